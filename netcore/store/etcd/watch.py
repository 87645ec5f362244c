"""One etcd watch: a thread reading the gateway's chunked JSON stream from a raw socket.

etcd3gw's own watcher is not used: it has no timeout, no reconnect, ignores
compaction and cancellation, and parses stream chunks as if they were whole lines.
This one parses the chunked stream, resumes from the last revision seen after any
disconnect (never losing or repeating an event), and resynchronises from a full
listing when that revision was compacted.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from netcore.backoff import Backoff
from netcore.store.etcd.gateway import COMPACTED, Gateway, StoreError, b64, dumps, range_end, unb64

__all__ = ["Watch"]

log = logging.getLogger("netcore.store.etcd")

Callback = Callable[[str, str, "dict[str, Any] | None"], None]


class _Disconnected(Exception):
    pass


class Watch:
    """Calls ``callback(event, id, data)`` for each change under the key directory ``top``.

    Seeds synchronously (raises ``StoreUnavailable`` at once if etcd is down), then runs
    on ``thread`` once started; ``cancel()`` stops it and calls ``on_done(self)``.
    """

    def __init__(
        self,
        gateway: Gateway,
        top: bytes,
        kind: str,
        callback: Callback,
        start: int | None,
        on_done: Callable[["Watch"], None] = lambda w: None,
    ) -> None:
        self.gateway, self.top, self.kind, self.callback, self.on_done = gateway, top, kind, callback, on_done
        self.stop = threading.Event()
        self.sock: socket.socket | None = None
        self.sock_lock = threading.Lock()
        self.known: dict[str, int] = {}  # id -> mod_revision of what the callback was told
        if start is None:
            resp = gateway.range(self.top, prefix=True, keys_only=True)
            self.next_rev = int(resp["header"]["revision"]) + 1
        else:
            self.next_rev = int(start)
            try:
                resp = gateway.range(self.top, prefix=True, keys_only=True, revision=max(self.next_rev - 1, 0))
            except StoreError as exc:
                if exc.code != COMPACTED:
                    raise
                resp = {}  # the caller's snapshot is gone: a resync will send every record
        for kv in resp.get("kvs") or []:
            self.known[self._id(kv["key"])] = int(kv["mod_revision"])
        self.thread = threading.Thread(target=self._run, name=f"etcd-watch-{kind}", daemon=True)

    def _id(self, b64key: str) -> str:
        return unquote(unb64(b64key)[len(self.top):].decode())

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
        self.on_done(self)

    def _deliver(self, event: str, ident: str, data: dict[str, Any] | None) -> None:
        try:
            self.callback(event, ident, data)
        except Exception:
            log.exception("watch callback for %s %s failed", self.kind, ident)

    def _run(self) -> None:
        delays = Backoff(0.05, 1.0)
        while not self.stop.is_set():
            try:
                self._stream()
                delays.reset()
            except Exception as exc:  # disconnected, etcd down, garbage: reconnect from next_rev
                if self.stop.is_set():
                    break
                log.debug("watch %s: %s; reconnecting from revision %d", self.kind, exc, self.next_rev)
                delays.wait(self.stop)

    def _connect(self) -> socket.socket:
        gw = self.gateway
        sock = socket.create_connection((gw.host, gw.port), timeout=gw.timeout)
        with self.sock_lock:
            if self.stop.is_set():
                sock.close()
                raise _Disconnected("cancelled")
            self.sock = sock
        body = dumps({
            "create_request": {
                "key": b64(self.top),
                "range_end": b64(range_end(self.top)),
                "start_revision": self.next_rev,
                "progress_notify": True,
            }
        })
        sock.sendall(
            f"POST /v3/watch HTTP/1.1\r\nHost: {gw.netloc}\r\nContent-Type: application/json\r\n"
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
                    if not self.gateway.healthy():
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
                self._deliver("put", ident, json.loads(unb64(kv["value"]))["data"])
            top = max(top, rev + 1)
        self.next_rev = top
        return False

    def _resync(self) -> None:
        """The revision to resume from was compacted: deliver the difference to a fresh listing."""
        resp = self.gateway.range(self.top, prefix=True)
        current = {
            self._id(kv["key"]): (int(kv["mod_revision"]), json.loads(unb64(kv["value"]))["data"])
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
