"""The cluster store on etcd v3: records, names, transactions (leases and watches delegated).

:class:`EtcdStore` implements the :class:`netcore.store.Store` protocol with the same
semantics as :class:`~netcore.store.sqlite.SqliteStore`, and adds what a cluster
needs: atomic create-if-absent, leases kept alive from a daemon thread, and watches
that survive etcd restarts.

Key layout (everything under ``prefix``, default ``/netcore/``; kind, id and name are
percent-encoded, ``quote(x, safe="")``, so none of them contains a ``/`` and a kind's
keys are exactly the keys under its directory; an id like ``10.0.0.0/24`` is stored as
``10.0.0.0%2F24``)::

    <prefix>obj/<kind>/<id>      {"data": {...}, "name": "<name>" | null, "parent": "<parent>" | null}
    <prefix>name/<kind>/<name>   "<id>"      the unique-name index of a kind

A record and its name key are always written and removed in the same etcd txn, and
carry the same lease. ``list(kind, parent)`` ranges over the kind's directory and
filters by parent on the client (no parent index: fine for the few thousand records
of a cluster, documented as a caveat).

Writes: every put/delete is simulated against the state it reads (the record, its
name key), then committed as ONE etcd txn guarded by ``mod_revision`` compares on
every key it read. When a guard fails (someone else wrote in between) the writes are
re-simulated on fresh state and retried; a create whose id or name is taken by then
raises ``AlreadyExists`` and nothing is written. ``transaction()`` buffers the writes of
its block (per thread) and commits them the same way, as one txn; nested blocks join
the outer one (an inner block that raises undoes only its own writes, like SQLite's
savepoints). Reads inside a transaction see the committed state plus the block's own
buffered writes (read-your-writes, as with SqliteStore); they take no guard.

The other modules of this package: ``gateway`` (HTTP to etcd's JSON gateway, errors),
``lease`` (leases and their keep-alive thread), ``watch`` (one thread per watch).

Caveats:

- One transaction is one etcd txn: etcd refuses more than ``--max-txn-ops`` (128 by
  default) writes or guards in it (``StoreError``); split bigger batches.
- ``close()`` stops keeping leases alive but does not revoke them: a restarted engine
  that re-registers within the TTL causes no delete/put churn at its peers. Call
  ``revoke_lease`` for a deliberate, immediate withdrawal.
- Plain HTTP only (no TLS, no auth), one endpoint per store.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from netcore.backoff import Backoff
from netcore.errors import AlreadyExists, Conflict, InvalidConfig, NetcoreError
from netcore.store.etcd.gateway import Gateway, StoreError, StoreUnavailable, b64, dumps, unb64
from netcore.store.etcd.lease import Leases
from netcore.store.etcd.watch import Watch

__all__ = ["EtcdStore", "StoreUnavailable", "StoreError"]

log = logging.getLogger("netcore.store.etcd")


_MAX_RETRIES = 50


@dataclass
class _Batch:
    """The writes of one transaction (or of one plain put/delete) before they commit."""

    log: list[tuple[Any, ...]] = field(default_factory=list)  # ops in order, for a replay
    view: dict[bytes, tuple[bytes, int] | None] = field(default_factory=dict)  # key -> (value, lease) | deleted
    base: dict[bytes, tuple[bytes | None, int]] = field(default_factory=dict)  # key -> (value, mod_revision) read
    depth: int = 0


class EtcdStore:
    """A :class:`netcore.store.Store` on etcd v3, plus leases, create-if-absent and watches.

    Thread-safe. ``lease_lost`` is set (and ``on_lease_lost(lease_id)`` called, if set)
    when a lease could not be kept alive: the engine must then re-register its records
    under a new lease.
    """

    def __init__(self, url: str, prefix: str = "/netcore/", timeout: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("etcd", "http") or not parts.hostname:
            raise InvalidConfig(f"cluster store URL {url!r}: expected etcd://HOST:PORT or http://HOST:PORT")
        if parts.path not in ("", "/"):
            raise InvalidConfig(f"cluster store URL {url!r}: a path is not supported, use the prefix")
        self.gateway = Gateway(parts.hostname, parts.port or 2379, timeout)
        self.host, self.port, self.url, self.timeout = self.gateway.host, self.gateway.port, self.gateway.url, timeout
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.lease_lost = threading.Event()
        self.on_lease_lost: Callable[[int], None] | None = None
        self._post = self.gateway.post
        self._range = self.gateway.range
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._leases = Leases(self.gateway, self._lease_gone)
        self._watches: set[Watch] = set()

    # ------------------------------------------------------------ keys ---------

    def _dir(self, space: str, kind: str) -> bytes:
        return f"{self.prefix}{space}/{quote(kind, safe='')}/".encode()

    def _obj_key(self, kind: str, id: str) -> bytes:
        return self._dir("obj", kind) + quote(id, safe="").encode()

    def _name_key(self, kind: str, name: str) -> bytes:
        return self._dir("name", kind) + quote(name, safe="").encode()

    def _fetch(self, keys: list[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        """Current value and mod_revision of each key, all at one revision."""
        if len(keys) == 1:
            resps = [self._range(keys[0])]
        else:
            out = self._post("/kv/txn", {"success": [{"request_range": {"key": b64(k)}} for k in keys]})
            resps = [r.get("response_range", {}) for r in out.get("responses", [])]
        result: dict[bytes, tuple[bytes | None, int]] = {}
        for key, resp in zip(keys, resps):
            kvs = resp.get("kvs") or []
            if kvs:
                result[key] = (unb64(kvs[0].get("value", "")), int(kvs[0].get("mod_revision", 0)))
            else:
                result[key] = (None, 0)
        return result

    # ------------------------------------------------------------ reads --------

    def _batch(self) -> _Batch | None:
        return getattr(self._local, "batch", None)

    def _read_record(self, key: bytes) -> dict[str, Any] | None:
        batch = self._batch()
        if batch is not None and key in batch.view:
            v = batch.view[key]
            return json.loads(v[0]) if v else None
        kvs = self._range(key).get("kvs") or []
        return json.loads(unb64(kvs[0]["value"])) if kvs else None

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        rec = self._read_record(self._obj_key(kind, id))
        return rec["data"] if rec else None

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        key = self._name_key(kind, name)
        batch = self._batch()
        if batch is not None and key in batch.view:
            v = batch.view[key]
            owner = v[0].decode() if v else None
        else:
            kvs = self._range(key).get("kvs") or []
            owner = unb64(kvs[0]["value"]).decode() if kvs else None
        if owner is None:
            return None
        rec = self._read_record(self._obj_key(kind, owner))
        return rec["data"] if rec and rec.get("name") == name else None

    def _records(self, kind: str) -> tuple[dict[str, dict[str, Any]], int]:
        """id -> record of ``kind`` (committed, plus this thread's buffered writes) and the revision read."""
        top = self._dir("obj", kind)
        resp = self._range(top, prefix=True)
        recs = {
            unquote(unb64(kv["key"])[len(top):].decode()): json.loads(unb64(kv["value"]))
            for kv in resp.get("kvs") or []
        }
        batch = self._batch()
        if batch is not None:
            for key, v in batch.view.items():
                if key.startswith(top):
                    ident = unquote(key[len(top):].decode())
                    if v is None:
                        recs.pop(ident, None)
                    else:
                        recs[ident] = json.loads(v[0])
        return recs, int(resp["header"]["revision"])

    def list(self, kind: str, parent: str | None = None) -> list[dict[str, Any]]:
        recs, _ = self._records(kind)
        return [r["data"] for r in recs.values() if parent is None or r.get("parent") == parent]

    def count(self, kind: str, parent: str | None = None) -> int:
        if parent is None and self._batch() is None:
            return int(self._range(self._dir("obj", kind), prefix=True, count_only=True).get("count", 0))
        return len(self.list(kind, parent))

    def list_with_revision(self, kind: str) -> tuple[list[dict[str, Any]], int]:
        """A consistent snapshot of ``kind`` and the revision to pass to ``watch(start_revision=...)``.

        The revision is the snapshot's revision + 1: a watch from it sees exactly the
        changes after the snapshot, with no gap and no repeat. (Committed state only.)
        """
        top = self._dir("obj", kind)
        resp = self._range(top, prefix=True)
        data = [json.loads(unb64(kv["value"]))["data"] for kv in resp.get("kvs") or []]
        return data, int(resp["header"]["revision"]) + 1

    # ------------------------------------------------------------ writes -------

    def _state(self, batch: _Batch, key: bytes) -> bytes | None:
        if key in batch.view:
            v = batch.view[key]
            return v[0] if v else None
        return batch.base[key][0]

    def _load(self, batch: _Batch, keys: list[bytes]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in batch.view and k not in batch.base]
        if missing:
            batch.base.update(self._fetch(missing))

    def _apply(self, batch: _Batch, op: tuple[Any, ...]) -> bool:
        """Simulate one write on ``batch``; checks everything before changing anything."""
        if op[0] == "put":
            _, kind, id, data, name, parent, create, lease = op
            okey = self._obj_key(kind, id)
            nkey = self._name_key(kind, name) if name is not None else None
            self._load(batch, [okey] + ([nkey] if nkey else []))
            cur = self._state(batch, okey)
            if create and cur is not None:
                raise AlreadyExists(f"{kind} id {id!r} already exists")
            if nkey is not None:
                owner = self._state(batch, nkey)
                if owner is not None and owner.decode() != id:
                    raise AlreadyExists(f"{kind} name {name!r} already exists")
            old_name = json.loads(cur).get("name") if cur else None
            if old_name is not None and old_name != name:
                # the record's guard (its mod_revision) proves its old name key is still its own
                batch.view[self._name_key(kind, old_name)] = None
            record = {"data": data, "name": name, "parent": parent}
            batch.view[okey] = (dumps(record), lease or 0)
            if nkey is not None:
                batch.view[nkey] = (id.encode(), lease or 0)
            return True
        _, kind, id = op
        okey = self._obj_key(kind, id)
        self._load(batch, [okey])
        cur = self._state(batch, okey)
        if cur is None:
            return False
        batch.view[okey] = None
        old_name = json.loads(cur).get("name")
        if old_name is not None:
            batch.view[self._name_key(kind, old_name)] = None
        return True

    def _txn(self, batch: _Batch) -> bool:
        if not batch.view:
            return True
        compare = [
            {"key": b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev}
            for k, (_, rev) in batch.base.items()
        ]
        success: list[dict[str, Any]] = []
        for key, v in batch.view.items():
            if v is None:
                success.append({"request_delete_range": {"key": b64(key)}})
            else:
                put: dict[str, Any] = {"key": b64(key), "value": b64(v[0])}
                if v[1]:
                    put["lease"] = v[1]
                success.append({"request_put": put})
        return bool(self._post("/kv/txn", {"compare": compare, "success": success}).get("succeeded"))

    def _commit(self, ops: list[tuple[Any, ...]], batch: _Batch | None = None) -> bool:
        """Commit ``ops`` as one txn, replaying them on fresh state while a guard fails.

        Returns the result of the last op (for a plain put/delete).
        """
        result = True
        delays = Backoff(0.001, 0.05)
        for _ in range(_MAX_RETRIES):
            if batch is None:
                batch = _Batch()
                for op in ops:
                    result = self._apply(batch, op)
            if self._txn(batch):
                return result
            batch = None
            delays.wait()
        raise Conflict(f"cluster store {self.url}: gave up after {_MAX_RETRIES} conflicting concurrent writes")

    def _write(self, op: tuple[Any, ...]) -> bool:
        batch = self._batch()
        if batch is None:
            return self._commit([op])
        result = self._apply(batch, op)
        batch.log.append(op)
        return result

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
        """Write a record. ``create=True`` raises ``AlreadyExists`` if the id or name is taken.

        ``lease``: the record (and its name key) vanish when the lease expires or is
        revoked. A put without ``lease`` makes the record permanent again.
        """
        self._write(("put", kind, id, data, name, parent, create, lease))

    def create(
        self,
        kind: str,
        id: str,
        data: dict[str, Any],
        name: str | None = None,
        parent: str | None = None,
        lease: int | None = None,
    ) -> bool:
        """Atomic create-if-absent: False if the id (or name) is taken. Safe across hosts."""
        try:
            self.put(kind, id, data, name=name, parent=parent, create=True, lease=lease)
        except AlreadyExists:
            return False
        return True

    def delete(self, kind: str, id: str) -> bool:
        return self._write(("del", kind, id))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Buffer this thread's writes; commit them as one etcd txn at the outermost exit."""
        batch = self._batch()
        if batch is not None:  # nested: joins the outer block, undoes only itself on error
            mark, view = len(batch.log), dict(batch.view)
            batch.depth += 1
            try:
                yield
            except BaseException:
                del batch.log[mark:]
                batch.view = view
                raise
            finally:
                batch.depth -= 1
            return
        batch = self._local.batch = _Batch(depth=1)
        try:
            yield
        except BaseException:
            self._local.batch = None
            raise
        self._local.batch = None
        self._commit(batch.log, batch)

    # ------------------------------------------------------------ leases -------

    def grant_lease(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds, kept alive until ``revoke_lease`` or ``close``."""
        return self._leases.grant(ttl)

    def revoke_lease(self, lease: int) -> None:
        """Stop keeping ``lease`` alive and revoke it: its records vanish now."""
        self._leases.revoke(lease)

    def _lease_gone(self, lease_id: int, why: str) -> None:
        self.lease_lost.set()
        if self.on_lease_lost is not None:
            try:
                self.on_lease_lost(lease_id)
            except Exception:
                log.exception("on_lease_lost callback failed")

    # ------------------------------------------------------------ watches ------

    def watch(
        self,
        kind: str,
        callback: Callable[[str, str, dict[str, Any] | None], None],
        start_revision: int | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event, id, data)`` ("put"/"delete") for each change of ``kind``, in order.

        From ``start_revision`` (as returned by ``list_with_revision``), else from now.
        Runs on its own thread; reconnects and resumes after etcd restarts without
        losing or repeating events; if the revision it must resume from was compacted,
        it diffs a fresh listing against what it delivered so far and delivers the
        difference (puts of new or changed records, deletes of vanished ones).
        Returns the function that cancels the watch (and waits for its thread).
        """
        w = Watch(self.gateway, self._dir("obj", kind), kind, callback, start_revision, self._watch_done)
        with self._lock:
            if self._closed.is_set():
                raise NetcoreError(f"cluster store {self.url} is closed")
            self._watches.add(w)
        w.thread.start()
        return w.cancel

    def _watch_done(self, w: Watch) -> None:
        with self._lock:
            self._watches.discard(w)

    # ------------------------------------------------------------ misc ---------

    def healthy(self) -> bool:
        return self.gateway.healthy()

    def close(self) -> None:
        """Cancel every watch, stop keeping leases alive (they expire by their TTL), stop every thread."""
        self._closed.set()
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.cancel()
        self._leases.close()
        self.gateway.close()
