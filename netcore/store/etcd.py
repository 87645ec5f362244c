"""The cluster store: etcd v3, spoken through its JSON gateway (``/v3/...``).

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

Transport: ``etcd3gw`` (the gateway client) for plain requests and leases. Its
watcher is not used: it has no timeout, no reconnect, ignores compaction and
cancellation, and parses stream chunks as if they were whole lines. Watches here run
on a raw socket per watch (one thread each) that parses the chunked JSON stream,
resumes from the last revision seen after any disconnect, and resynchronises from a
full listing when that revision was compacted.

Caveats:

- One transaction is one etcd txn: etcd refuses more than ``--max-txn-ops`` (128 by
  default) writes or guards in it (``StoreError``); split bigger batches.
- ``close()`` stops keeping leases alive but does not revoke them: a restarted engine
  that re-registers within the TTL causes no delete/put churn at its peers. Call
  ``revoke_lease`` for a deliberate, immediate withdrawal.
- Plain HTTP only (no TLS, no auth), one endpoint per store.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests
from etcd3gw import exceptions as gwexc
from etcd3gw.client import Etcd3Client

from netcore.errors import AlreadyExists, Conflict, InvalidConfig, NetcoreError

__all__ = ["EtcdStore", "StoreUnavailable", "StoreError"]

log = logging.getLogger(__name__)

_MAX_RETRIES = 50
_COMPACTED = 11  # gRPC OUT_OF_RANGE: "mvcc: required revision has been compacted"


class StoreUnavailable(NetcoreError):
    """The cluster store cannot be reached (or has no leader); one line, names the store."""

    status = 503


class StoreError(NetcoreError):
    """etcd answered, but refused the request (e.g. an unknown lease)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class _Disconnected(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(data: str) -> bytes:
    return base64.b64decode(data)


def _range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class _Batch:
    """The writes of one transaction (or of one plain put/delete) before they commit."""

    log: list[tuple[Any, ...]] = field(default_factory=list)  # ops in order, for a replay
    view: dict[bytes, tuple[bytes, int] | None] = field(default_factory=dict)  # key -> (value, lease) | deleted
    base: dict[bytes, tuple[bytes | None, int]] = field(default_factory=dict)  # key -> (value, mod_revision) read
    depth: int = 0


@dataclass
class _Lease:
    ttl: int
    last_ok: float
    due: float


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
        self.host = parts.hostname
        self.port = parts.port or 2379
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"etcd://{host}:{self.port}"
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.timeout = timeout
        self.lease_lost = threading.Event()
        self.on_lease_lost: Callable[[int], None] | None = None
        self._client = self._new_client()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._leases: dict[int, _Lease] = {}
        self._lease_wake = threading.Event()
        self._keepalive: threading.Thread | None = None
        self._watches: set[_Watch] = set()

    # ------------------------------------------------------------ transport ----

    def _new_client(self) -> Etcd3Client:
        session = requests.Session()
        session.trust_env = False  # never send cluster traffic through an HTTP proxy from the environment
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=64)
        session.mount("http://", adapter)
        return Etcd3Client(host=self.host, port=self.port, timeout=self.timeout, api_path="/v3/", session=session)

    def _unreachable(self, why: str) -> StoreUnavailable:
        return StoreUnavailable(f"cluster store {self.url} is unreachable: {why}")

    def _reason(self, exc: BaseException) -> str:
        text = getattr(exc, "detail_text", None) or str(exc)
        try:  # etcd's own answer (503: no leader, ...)
            return str(json.loads(text)["error"])
        except (ValueError, KeyError, TypeError):
            pass
        if isinstance(exc, (gwexc.ConnectionTimeoutError, requests.Timeout, socket.timeout)) or "timed out" in text:
            return f"no answer within {self.timeout:g}s"
        m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
        if m:
            return m.group(1).strip().lower()
        return text.splitlines()[0][:200] if text else type(exc).__name__

    def _post(self, path: str, payload: dict[str, Any], client: Etcd3Client | None = None) -> dict[str, Any]:
        client = client or self._client
        try:
            return client.post(client.get_url(path), json=payload)
        except (gwexc.ConnectionFailedError, gwexc.ConnectionTimeoutError) as exc:
            raise self._unreachable(self._reason(exc)) from None
        except gwexc.Etcd3Exception as exc:
            try:
                body = json.loads(exc.detail_text or "")
                msg, code = str(body.get("error") or body.get("message")), body.get("code")
            except (ValueError, AttributeError):
                msg, code = (exc.detail_text or str(exc)).strip()[:200], None
            raise StoreError(f"cluster store {self.url} refused {path}: {msg}", code) from None
        except requests.RequestException as exc:
            raise self._unreachable(self._reason(exc)) from None

    # ------------------------------------------------------------ keys ---------

    def _dir(self, space: str, kind: str) -> bytes:
        return f"{self.prefix}{space}/{quote(kind, safe='')}/".encode()

    def _obj_key(self, kind: str, id: str) -> bytes:
        return self._dir("obj", kind) + quote(id, safe="").encode()

    def _name_key(self, kind: str, name: str) -> bytes:
        return self._dir("name", kind) + quote(name, safe="").encode()

    def _range(self, key: bytes, prefix: bool = False, **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"key": _b64(key), **extra}
        if prefix:
            payload["range_end"] = _b64(_range_end(key))
        return self._post("/kv/range", payload)

    def _fetch(self, keys: list[bytes]) -> dict[bytes, tuple[bytes | None, int]]:
        """Current value and mod_revision of each key, all at one revision."""
        if len(keys) == 1:
            resps = [self._range(keys[0])]
        else:
            out = self._post("/kv/txn", {"success": [{"request_range": {"key": _b64(k)}} for k in keys]})
            resps = [r.get("response_range", {}) for r in out.get("responses", [])]
        result: dict[bytes, tuple[bytes | None, int]] = {}
        for key, resp in zip(keys, resps):
            kvs = resp.get("kvs") or []
            if kvs:
                result[key] = (_unb64(kvs[0].get("value", "")), int(kvs[0].get("mod_revision", 0)))
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
        return json.loads(_unb64(kvs[0]["value"])) if kvs else None

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
            owner = _unb64(kvs[0]["value"]).decode() if kvs else None
        if owner is None:
            return None
        rec = self._read_record(self._obj_key(kind, owner))
        return rec["data"] if rec and rec.get("name") == name else None

    def _records(self, kind: str) -> tuple[dict[str, dict[str, Any]], int]:
        """id -> record of ``kind`` (committed, plus this thread's buffered writes) and the revision read."""
        top = self._dir("obj", kind)
        resp = self._range(top, prefix=True)
        recs = {
            unquote(_unb64(kv["key"])[len(top):].decode()): json.loads(_unb64(kv["value"]))
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
        data = [json.loads(_unb64(kv["value"]))["data"] for kv in resp.get("kvs") or []]
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
            batch.view[okey] = (_dumps(record), lease or 0)
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
            {"key": _b64(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev}
            for k, (_, rev) in batch.base.items()
        ]
        success: list[dict[str, Any]] = []
        for key, v in batch.view.items():
            if v is None:
                success.append({"request_delete_range": {"key": _b64(key)}})
            else:
                put: dict[str, Any] = {"key": _b64(key), "value": _b64(v[0])}
                if v[1]:
                    put["lease"] = v[1]
                success.append({"request_put": put})
        return bool(self._post("/kv/txn", {"compare": compare, "success": success}).get("succeeded"))

    def _commit(self, ops: list[tuple[Any, ...]], batch: _Batch | None = None) -> bool:
        """Commit ``ops`` as one txn, replaying them on fresh state while a guard fails.

        Returns the result of the last op (for a plain put/delete).
        """
        result = True
        for attempt in range(_MAX_RETRIES):
            if batch is None:
                batch = _Batch()
                for op in ops:
                    result = self._apply(batch, op)
            if self._txn(batch):
                return result
            batch = None
            time.sleep(min(0.001 * 2**attempt, 0.05))
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
        resp = self._post("/lease/grant", {"TTL": int(ttl), "ID": 0})
        lease_id, granted = int(resp["ID"]), int(resp.get("TTL", ttl))
        now = time.monotonic()
        with self._lock:
            self._leases[lease_id] = _Lease(granted, now, now + max(granted / 3, 0.2))
            if self._keepalive is None and not self._closed.is_set():
                self._keepalive = threading.Thread(target=self._keepalive_loop, name="etcd-keepalive", daemon=True)
                self._keepalive.start()
        self._lease_wake.set()
        return lease_id

    def revoke_lease(self, lease: int) -> None:
        """Stop keeping ``lease`` alive and revoke it: its records vanish now."""
        with self._lock:
            self._leases.pop(lease, None)
        try:
            self._post("/kv/lease/revoke", {"ID": lease})
        except StoreError as exc:
            if "lease not found" not in str(exc):
                raise

    def _lose(self, lease_id: int, why: str) -> None:
        with self._lock:
            if self._leases.pop(lease_id, None) is None:
                return
        log.warning("cluster store %s: lease %x lost: %s", self.url, lease_id, why)
        self.lease_lost.set()
        if self.on_lease_lost is not None:
            try:
                self.on_lease_lost(lease_id)
            except Exception:
                log.exception("on_lease_lost callback failed")

    def _keepalive_loop(self) -> None:
        client = self._new_client()
        try:
            while not self._closed.is_set():
                now = time.monotonic()
                with self._lock:
                    due = [(lid, ls) for lid, ls in self._leases.items() if ls.due <= now]
                    nxt = min((ls.due for ls in self._leases.values()), default=now + 1.0)
                for lid, ls in due:
                    if self._closed.is_set():
                        return
                    try:
                        resp = self._post("/lease/keepalive", {"ID": lid}, client)
                        ttl = int(resp.get("result", {}).get("TTL", 0))
                    except NetcoreError as exc:
                        if time.monotonic() - ls.last_ok > ls.ttl:
                            self._lose(lid, str(exc))
                        else:  # retry soon, the lease is still alive on the server
                            ls.due = time.monotonic() + min(0.25, ls.ttl / 4)
                        continue
                    if ttl <= 0:
                        self._lose(lid, "expired on the server")
                        continue
                    ls.last_ok = time.monotonic()
                    ls.due = ls.last_ok + max(ls.ttl / 3, 0.2)
                if not due:
                    self._lease_wake.wait(max(0.0, min(nxt - time.monotonic(), 1.0)))
                    self._lease_wake.clear()
        finally:
            client.session.close()

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
        w = _Watch(self, kind, callback, start_revision)
        with self._lock:
            if self._closed.is_set():
                raise NetcoreError(f"cluster store {self.url} is closed")
            self._watches.add(w)
        w.thread.start()
        return w.cancel

    # ------------------------------------------------------------ misc ---------

    def healthy(self) -> bool:
        try:
            resp = self._client.session.get(self._client.base_url + "/health", timeout=self.timeout)
            return resp.status_code == 200 and resp.json().get("health") == "true"
        except Exception:
            return False

    def close(self) -> None:
        """Cancel every watch, stop keeping leases alive (they expire by their TTL), stop every thread."""
        self._closed.set()
        self._lease_wake.set()
        with self._lock:
            watches = list(self._watches)
            keepalive = self._keepalive
        for w in watches:
            w.cancel()
        if keepalive is not None and keepalive is not threading.current_thread():
            keepalive.join()
        self._client.session.close()


class _Watch:
    """One watch: a thread reading etcd's chunked JSON stream from a raw socket."""

    def __init__(self, store: EtcdStore, kind: str, callback: Callable[..., None], start: int | None) -> None:
        self.store, self.kind, self.callback = store, kind, callback
        self.top = store._dir("obj", kind)
        self.stop = threading.Event()
        self.sock: socket.socket | None = None
        self.sock_lock = threading.Lock()
        self.known: dict[str, int] = {}  # id -> mod_revision of what the callback was told
        # seed synchronously: raises StoreUnavailable now if etcd is down
        if start is None:
            resp = store._range(self.top, prefix=True, keys_only=True)
            self.next_rev = int(resp["header"]["revision"]) + 1
        else:
            self.next_rev = int(start)
            try:
                resp = store._range(self.top, prefix=True, keys_only=True, revision=max(self.next_rev - 1, 0))
            except StoreError as exc:
                if exc.code != _COMPACTED:
                    raise
                resp = {}  # the caller's snapshot is gone: a resync will send every record
        for kv in resp.get("kvs") or []:
            self.known[self._id(kv["key"])] = int(kv["mod_revision"])
        self.thread = threading.Thread(target=self._run, name=f"etcd-watch-{kind}", daemon=True)

    def _id(self, b64key: str) -> str:
        return unquote(_unb64(b64key)[len(self.top):].decode())

    def cancel(self) -> None:
        self.stop.set()
        with self.sock_lock:
            if self.sock is not None:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()
        with self.store._lock:
            self.store._watches.discard(self)

    def _deliver(self, event: str, ident: str, data: dict[str, Any] | None) -> None:
        try:
            self.callback(event, ident, data)
        except Exception:
            log.exception("watch callback for %s %s failed", self.kind, ident)

    def _run(self) -> None:
        backoff = 0.05
        while not self.stop.is_set():
            try:
                self._stream()
                backoff = 0.05
            except Exception as exc:  # disconnected, etcd down, garbage: reconnect from next_rev
                if self.stop.is_set():
                    break
                log.debug("watch %s: %s; reconnecting from revision %d", self.kind, exc, self.next_rev)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)

    def _connect(self) -> socket.socket:
        st = self.store
        sock = socket.create_connection((st.host, st.port), timeout=st.timeout)
        with self.sock_lock:
            if self.stop.is_set():
                sock.close()
                raise _Disconnected("cancelled")
            self.sock = sock
        body = _dumps({
            "create_request": {
                "key": _b64(self.top),
                "range_end": _b64(_range_end(self.top)),
                "start_revision": self.next_rev,
                "progress_notify": True,
            }
        })
        host = f"[{st.host}]" if ":" in st.host else st.host
        sock.sendall(
            f"POST /v3/watch HTTP/1.1\r\nHost: {host}:{st.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        return sock

    def _stream(self) -> None:
        sock = self._connect()
        try:
            self._read(sock)
        finally:
            with self.sock_lock:
                self.sock = None
            sock.close()

    def _read(self, sock: socket.socket) -> None:
        buf, lines = bytearray(), bytearray()
        headers_done, chunked = False, False
        idle_since = time.monotonic()
        sock.settimeout(0.25)
        while not self.stop.is_set():
            try:
                got = sock.recv(65536)
            except socket.timeout:
                if time.monotonic() - idle_since > 10.0:  # silent for long: is etcd still there?
                    if not self.store.healthy():
                        raise _Disconnected("etcd stopped answering") from None
                    idle_since = time.monotonic()
                continue
            if not got:
                raise _Disconnected("stream closed")
            idle_since = time.monotonic()
            buf += got
            if not headers_done:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                if len(head[0].split()) < 2 or head[0].split()[1] != "200":
                    raise _Disconnected(f"watch refused: {head[0]}")
                chunked = any(h.lower().replace(" ", "") == "transfer-encoding:chunked" for h in head[1:])
                del buf[: end + 4]
                headers_done = True
            if chunked:
                while True:
                    eol = buf.find(b"\r\n")
                    if eol < 0:
                        break
                    size = int(bytes(buf[:eol]).split(b";")[0] or b"0", 16)
                    if size == 0:
                        raise _Disconnected("stream ended")
                    if len(buf) < eol + 2 + size + 2:
                        break
                    lines += buf[eol + 2 : eol + 2 + size]
                    del buf[: eol + 2 + size + 2]
            else:
                lines += buf
                buf.clear()
            while True:
                nl = lines.find(b"\n")
                if nl < 0:
                    break
                line = bytes(lines[:nl]).strip()
                del lines[: nl + 1]
                if line and self._message(json.loads(line)):
                    return

    def _message(self, msg: dict[str, Any]) -> bool:
        """Handle one stream message; True when the stream must be reopened."""
        if "error" in msg and "result" not in msg:
            raise _Disconnected(f"watch error: {msg['error']}")
        res = msg.get("result", {})
        if res.get("canceled"):
            if int(res.get("compact_revision", 0) or 0):
                self._resync()
                return True
            raise _Disconnected(f"watch cancelled: {res.get('cancel_reason', '')}")
        events = res.get("events") or []
        if not events:
            if not res.get("created") and "header" in res and "revision" in res["header"]:
                # a progress notification: everything up to this revision has been sent
                self.next_rev = max(self.next_rev, int(res["header"]["revision"]) + 1)
            return False
        floor, top = self.next_rev, self.next_rev
        for ev in events:
            kv = ev["kv"]
            rev = int(kv.get("mod_revision", 0))
            if rev < floor:  # already delivered before a reconnect
                continue
            if self.stop.is_set():
                return True
            ident = self._id(kv["key"])
            if ev.get("type") == "DELETE":
                self.known.pop(ident, None)
                self._deliver("delete", ident, None)
            else:
                self.known[ident] = rev
                self._deliver("put", ident, json.loads(_unb64(kv["value"]))["data"])
            top = max(top, rev + 1)
        self.next_rev = top
        return False

    def _resync(self) -> None:
        """The revision to resume from was compacted: deliver the difference to a fresh listing."""
        resp = self.store._range(self.top, prefix=True)
        current = {
            self._id(kv["key"]): (int(kv["mod_revision"]), json.loads(_unb64(kv["value"]))["data"])
            for kv in resp.get("kvs") or []
        }
        log.info("watch %s: revision %d was compacted, resynchronising", self.kind, self.next_rev)
        for ident in [i for i in self.known if i not in current]:
            del self.known[ident]
            self._deliver("delete", ident, None)
        for ident, (rev, data) in sorted(current.items(), key=lambda kv: kv[1][0]):
            if self.known.get(ident) != rev:
                self.known[ident] = rev
                self._deliver("put", ident, data)
        self.next_rev = int(resp["header"]["revision"]) + 1
