"""An in-memory store: the ``Store`` contract without a file, for tests that need no disk.

Same behaviour as ``SqliteStore`` where callers can see it: unique names per kind,
``create=True`` refusing a taken id or name, records copied in and out (a caller
mutating a returned dict changes nothing stored), and ``transaction()`` blocks that
nest as savepoints: a failure undoes its own block only.

It also keeps the cluster store's extras (``EtcdStore``'s contract beyond ``Store``):
leases whose records vanish on ``revoke_lease``, ``create``, ``list_with_revision`` and
``watch``. So engines in one process can share one ``MemoryStore`` as their cluster
store. Committed changes wait in a queue until ``deliver()`` hands them to the
watchers, in order: the test calls it where etcd's watch thread would run, so every
event arrives after the write that caused it returned (as with etcd), deterministically.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from netcore.errors import AlreadyExists

__all__ = ["MemoryStore"]

_Row = tuple[str | None, str | None, str]  # name, parent, data as JSON (as SQLite keeps it)
_Event = tuple[str, str, str, str | None]  # kind, "put"/"delete", id, data as JSON
_Watcher = Callable[[str, str, dict[str, Any] | None], None]


class MemoryStore:
    """Thread-safe: one lock, held by a transaction for its whole block (as SQLite's writer lock)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.RLock()
        self._depth = 0
        self._leased: dict[tuple[str, str], int] = {}  # record -> its lease
        self._leases: set[int] = set()
        self._next_lease = 1
        self._revision = 0
        self._pending: list[_Event] = []  # written in the open transaction
        self._committed: list[_Event] = []  # waiting for ``deliver()``
        self._watchers: list[tuple[str, _Watcher]] = []
        self.on_lease_lost: Callable[[int], None] | None = None  # as EtcdStore's; a memory lease never lapses

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            saved = copy.copy(self._rows), dict(self._leased), len(self._pending)  # rows are immutable tuples
            self._depth += 1
            try:
                yield
            except BaseException:
                self._rows, self._leased = saved[0], saved[1]
                del self._pending[saved[2]:]
                raise
            finally:
                self._depth -= 1
        self._deliver()

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.get((kind, id))
        return json.loads(row[2]) if row else None

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = next((r for (k, _), r in self._rows.items() if k == kind and r[0] == name), None)
        return json.loads(row[2]) if row else None

    def list(self, kind: str, parent: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = [r for (k, _), r in self._rows.items() if k == kind and (parent is None or r[1] == parent)]
        return [json.loads(r[2]) for r in rows]

    def count(self, kind: str, parent: str | None = None) -> int:
        with self._lock:
            return sum(1 for (k, _), r in self._rows.items() if k == kind and (parent is None or r[1] == parent))

    def put(
        self,
        kind: str,
        id: str,
        data: dict[str, Any],
        name: str | None = None,
        parent: str | None = None,
        create: bool = False,
        lease: int | None = None,
    ) -> None:
        """``lease``: the record goes when the lease is revoked (cluster stores); None: permanent."""
        text = json.dumps(data, separators=(",", ":"))
        with self._lock:
            taken = (create and (kind, id) in self._rows) or (
                name is not None and any(k == kind and i != id and r[0] == name for (k, i), r in self._rows.items())
            )
            if taken:
                what = f"name {name!r}" if name else f"id {id!r}"
                raise AlreadyExists(f"{kind} {what} already exists")
            self._rows[(kind, id)] = (name, parent, text)
            if lease is not None:
                self._leased[(kind, id)] = lease
            else:
                self._leased.pop((kind, id), None)
            self._pending.append((kind, "put", id, text))
        self._deliver()

    def delete(self, kind: str, id: str) -> bool:
        with self._lock:
            gone = self._rows.pop((kind, id), None) is not None
            self._leased.pop((kind, id), None)
            if gone:
                self._pending.append((kind, "delete", id, None))
        self._deliver()
        return gone

    # ------------------------------------------------------------ cluster store --

    def create(
        self, kind: str, id: str, data: dict[str, Any], name: str | None = None, parent: str | None = None, lease: int | None = None
    ) -> bool:
        """Create-if-absent: False if the id (or name) is taken."""
        try:
            self.put(kind, id, data, name=name, parent=parent, create=True, lease=lease)
        except AlreadyExists:
            return False
        return True

    def grant_lease(self, ttl: int) -> int:
        with self._lock:
            lease, self._next_lease = self._next_lease, self._next_lease + 1
            self._leases.add(lease)
        return lease

    def revoke_lease(self, lease: int) -> None:
        """The lease's records vanish now (watchers see their deletes), as when an etcd lease expires."""
        with self.transaction():
            self._leases.discard(lease)
            for kind, id in [key for key, held in self._leased.items() if held == lease]:
                self.delete(kind, id)

    def list_with_revision(self, kind: str) -> tuple[list[dict[str, Any]], int]:
        with self._lock:
            return self.list(kind), self._revision

    def watch(self, kind: str, callback: _Watcher, start_revision: int | None = None) -> Callable[[], None]:
        """Call ``callback(event, id, data)`` for each later change of ``kind``; returns the cancel."""
        entry = (kind, callback)
        with self._lock:
            self._watchers.append(entry)

        def cancel() -> None:
            with self._lock:
                if entry in self._watchers:
                    self._watchers.remove(entry)

        return cancel

    def healthy(self) -> bool:
        return True

    def _deliver(self) -> None:
        """Commit point: the block's events join the watchers' queue."""
        with self._lock:
            if self._depth:
                return
            self._revision += len(self._pending)
            self._committed.extend(self._pending)
            self._pending = []

    def deliver(self) -> int:
        """Hand every committed change to the watchers of its kind, in order (events the
        watchers cause included); returns how many changes were delivered."""
        n = 0
        while True:
            with self._lock:
                if not self._committed:
                    return n
                kind, event, id, text = self._committed.pop(0)
                watchers = [cb for wanted, cb in self._watchers if wanted == kind]
            n += 1
            for callback in watchers:  # outside the lock: a watcher may write back
                callback(event, id, None if text is None else json.loads(text))

    def close(self) -> None:
        """Nothing to release; the records stay readable, as a reopened database's would."""
