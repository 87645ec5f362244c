"""An in-memory store: the ``Store`` contract without a file, for tests that need no disk.

Same behaviour as ``SqliteStore`` where callers can see it: unique names per kind,
``create=True`` refusing a taken id or name, records copied in and out (a caller
mutating a returned dict changes nothing stored), and ``transaction()`` blocks that
nest as savepoints: a failure undoes its own block only.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from netcore.errors import AlreadyExists

__all__ = ["MemoryStore"]

_Row = tuple[str | None, str | None, str]  # name, parent, data as JSON (as SQLite keeps it)


class MemoryStore:
    """Thread-safe: one lock, held by a transaction for its whole block (as SQLite's writer lock)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            saved = copy.copy(self._rows)  # rows are immutable tuples: a shallow copy is a snapshot
            try:
                yield
            except BaseException:
                self._rows = saved
                raise

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
    ) -> None:
        text = json.dumps(data, separators=(",", ":"))
        with self._lock:
            taken = (create and (kind, id) in self._rows) or (
                name is not None and any(k == kind and i != id and r[0] == name for (k, i), r in self._rows.items())
            )
            if taken:
                what = f"name {name!r}" if name else f"id {id!r}"
                raise AlreadyExists(f"{kind} {what} already exists")
            self._rows[(kind, id)] = (name, parent, text)

    def delete(self, kind: str, id: str) -> bool:
        with self._lock:
            return self._rows.pop((kind, id), None) is not None

    def close(self) -> None:
        """Nothing to release; the records stay readable, as a reopened database's would."""
