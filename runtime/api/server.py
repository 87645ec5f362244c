"""The engine's API: JSON over HTTP/1.0 on a unix socket, Docker-like paths.

Errors answer with the category's status and ``{"message": "..."}``; the client
prints the message as the one line users see.

Connections are bounded (issue 12, item 2): a connection costs no thread until its
headers are in. One acceptor thread holds the connections that are still sending
their headers in an epoll set, drops those that take longer than ``header_timeout``
(408), and when ``max_pending`` of them are waiting it drops the oldest one for the
newest, so idle connections can never lock real clients out. A request whose headers
are complete goes to a worker; when ``max_active`` requests are being served, a new
one gets 503 as soon as its headers are in. Every client connection lives on a descriptor above
1023 when the open-files limit allows, so that the low descriptors stay free for
libraries that still wait with ``select()`` (libnftables aborts the process on a
descriptor >= FD_SETSIZE).

Request bodies are checked at this edge against the types a route declares (see
``runtime.api.schemas``): a bad one is a 400 with one line and never reaches a handler.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from netcore import NetcoreError

__all__ = ["ApiServer", "Router", "Route", "Stream", "Hijack", "RawBody", "Limits", "RAW", "follow_file"]

log = logging.getLogger("netcore.api")
Handler = Callable[..., Any]
FD_SETSIZE = 1024
RAW = "application/x-tar"  # a raw body (an archive): the handler reads it as it arrives (``RawBody``)


@dataclass(frozen=True)
class Limits:
    """How much a client may hold of the engine (seconds, connections, bytes)."""

    header_timeout: float = 10.0  # from accept to the end of the request's headers
    body_timeout: float = 10.0  # of silence while the body is read
    send_timeout: float = 300.0  # of a client not reading its answer (a paused `logs -f | less`)
    max_pending: int = 1024  # connections still sending headers; beyond, the oldest is dropped
    max_active: int = 512  # requests being served; beyond, 503. Each worker thread may keep a netlink
    # socket on a low descriptor (pyroute2 keeps one per thread): 512 leave room below 1024
    max_header: int = 64 * 1024
    max_body: int = 1024 * 1024  # a route may declare its own
    backlog: int = 4096  # the kernel clamps it to net.core.somaxconn


def fit(limits: Limits, nofile: int) -> Limits:
    """``limits`` shrunk to an open-files limit: connections may take at most half of what
    is left once 256 descriptors are kept for the engine's own work (with the hard
    limit of 1024 some hosts still have, 384 connections rather than EMFILE)."""
    room = max(32, (nofile - 256) // 2)
    if limits.max_pending + limits.max_active <= room:
        return limits
    import dataclasses

    active = max(8, min(limits.max_active, room // 3))
    return dataclasses.replace(limits, max_active=active, max_pending=max(8, room - active))


class HttpError(Exception):
    """An answer decided before any handler ran (bad request line, body, size)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Route:
    method: str
    pattern: Any  # re.Pattern
    handler: Handler
    body: Any = None  # a pydantic model, RAW, or None: an optional JSON object, passed as is
    query: Any = None  # a pydantic model for the query string, or None: a dict of strings
    max_body: int | None = None


class Router:
    """The route table: method, path pattern, handler, and the types of body and query it takes."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, body: Any = None, query: Any = None,
            max_body: int | None = None) -> None:
        import re

        self.routes.append(Route(method, re.compile("^" + pattern + "$"), handler, body, query, max_body))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            hit = route.pattern.match(path)
            if route.method == method and hit:
                return route, hit.groupdict()
        return None


class Stream:
    """A handler's streaming answer: ``chunks`` yields bytes until done."""

    def __init__(self, chunks: Any) -> None:
        self.chunks = chunks


class Hijack:
    """A handler's answer that takes the connection over (Docker's attach): after ``101
    UPGRADED``, ``run(rfile, sock)`` reads what the client sends from ``rfile`` and writes to
    ``sock`` until it returns; the connection is closed then."""

    def __init__(self, run: Callable[[Any, socket.socket], None], content_type: str) -> None:
        self.run = run
        self.content_type = content_type


class Answer:
    """A handler's answer with a status of its own and a JSON body (CNI's error object is a
    4xx's body, not ``{"message"}``: ``netcore-cni`` prints the body as it comes)."""

    def __init__(self, status: int, payload: Any) -> None:
        self.status, self.payload = status, payload


class RawBody:
    """A raw request body (``Content-Type: application/x-tar``): ``Content-Length`` bytes, or
    (none given) up to the client's half-close, read by the handler as it arrives."""

    def __init__(self, rfile: Any, length: int | None) -> None:
        self.rfile, self.left = rfile, length

    def read(self, n: int = -1) -> bytes:
        if self.left is None:
            return self.rfile.read1(n if n > 0 else 1 << 20)
        if self.left <= 0:
            return b""
        data = self.rfile.read1(min(self.left, n if n > 0 else 1 << 20))
        self.left -= len(data)
        return data


class _Prefixed(io.RawIOBase):
    """The connection's bytes after the headers: those the acceptor already read, then the socket."""

    def __init__(self, first: bytes, sock: socket.socket) -> None:
        self._first, self._sock = first, sock

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._first:
            n = min(len(buf), len(self._first))
            buf[:n], self._first = self._first[:n], self._first[n:]
            return n
        return self._sock.recv_into(buf)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _answer(status: int, payload: Any, content_type: str = "application/json") -> bytes:
    data = b"" if payload is None else json.dumps(payload).encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP/1.0 {status} {reason}\r\nServer: netcore\r\nContent-Type: {content_type}\r\n"
    if payload is not None or status != 200:
        head += f"Content-Length: {len(data)}\r\n"
    return head.encode() + b"\r\n" + data


def _high(sock: socket.socket) -> socket.socket:
    """``sock`` on a descriptor >= FD_SETSIZE if the open-files limit allows (see the module doc)."""
    try:
        fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, FD_SETSIZE)
    except OSError:
        return sock
    moved = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    sock.close()
    return moved


class _Request:
    """One parsed request: method, path, query, headers, and the body bytes."""

    def __init__(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise HttpError(400, "malformed request line")
        self.method, target, _ = parts
        url = urlsplit(target)
        self.path = url.path
        try:
            self.query = {k: v[-1] for k, v in parse_qs(url.query, strict_parsing=False, errors="strict").items()}
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "malformed query string") from None
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if not sep or not key.strip():
                raise HttpError(400, "malformed header line")
            self.headers[key.strip().lower()] = value.strip()
        self.body = b""

    def content_length(self, limit: int, required: bool = True) -> int | None:
        """The declared length; None when there is none and ``required`` is false (a raw
        body then runs to the client's half-close)."""
        if "transfer-encoding" in self.headers:
            raise HttpError(411, "chunked request bodies are not supported: send a Content-Length")
        if not required and "content-length" not in self.headers:
            return None
        raw = self.headers.get("content-length", "0") or "0"
        if not raw.isdigit() or len(raw) > 18:
            raise HttpError(400, f"invalid Content-Length {_one_line(raw, 40)!r}")
        length = int(raw)
        if length > limit:
            raise HttpError(413, f"request body too large: {length} bytes, at most {limit}")
        return length


class ApiServer:
    """Serves a ``Router`` on a unix socket until ``shutdown()``; requests run on ``submit``."""

    def __init__(self, path: str, router: Router, limits: Limits | None = None,
                 submit: Callable[..., None] | None = None) -> None:
        import resource

        self.router = router
        self.test_mode = bool(os.environ.get("NETCORE_TEST_MODE"))  # per-request test switches honoured
        self.limits = fit(limits or Limits(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self.path = path
        self._submit = submit or (lambda fn, *args: threading.Thread(target=fn, args=args, daemon=True).start())
        self._active = 0
        self._active_lock = threading.Lock()
        self._pending: OrderedDict[int, tuple[socket.socket, float, bytearray]] = OrderedDict()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._serving = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel = selectors.EpollSelector()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # a stale socket of a dead engine
            else:
                raise NetcoreError(f"another engine is already listening on {path}")
            finally:
                probe.close()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.bind(path)
        os.chmod(path, 0o660)
        self.socket.listen(self.limits.backlog)
        self.socket.setblocking(False)

    @property
    def active(self) -> int:
        """Requests being served now."""
        return self._active

    @property
    def pending(self) -> int:
        """Connections still sending their headers."""
        return len(self._pending)

    # ------------------------------------------------------------ acceptor ---

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        sel = self._sel
        sel.register(self.socket, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                timeout = poll_interval
                if self._pending:
                    first = next(iter(self._pending.values()))[1]
                    timeout = min(timeout, max(0.0, first - time.monotonic()))
                for key, _ in sel.select(timeout):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        try:
                            os.read(self._wake_r, 512)
                        except BlockingIOError:
                            pass
                    else:
                        self._read_head(key.fd)
                self._expire()
        finally:
            for fd in list(self._pending):
                self._drop(fd)
            self._done.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread); returns once the acceptor has stopped."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._serving:
            self._done.wait()

    def server_close(self) -> None:
        self.socket.close()
        self._sel.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _accept(self) -> None:
        lim = self.limits
        while True:
            try:
                conn, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE/ENFILE: leave it in the backlog, try again on the next turn
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept a client connection: %s", exc.strerror)
                    time.sleep(0.05)
                    return
                raise
            conn = _high(conn)
            if len(self._pending) >= lim.max_pending:
                oldest = next(iter(self._pending))
                self._refuse(self._pending[oldest][0], 408, "request headers not received in time: too many idle connections")
                self._drop(oldest, close=False)
            conn.setblocking(False)
            fd = conn.fileno()
            self._pending[fd] = (conn, time.monotonic() + lim.header_timeout, bytearray())
            self._sel.register(fd, selectors.EVENT_READ, "conn")

    def _refuse(self, conn: socket.socket, status: int, message: str) -> None:
        """One answer without waiting for the request, then close (best effort)."""
        try:
            conn.setblocking(False)
            conn.send(_answer(status, {"message": message}))
            for _ in range(16):  # what the client sent: closing on unread data would reset it
                if not conn.recv(65536):
                    break
        except OSError:
            pass
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()

    def _drop(self, fd: int, close: bool = True) -> socket.socket:
        conn = self._pending.pop(fd)[0]
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        if close:
            conn.close()
        return conn

    def _expire(self) -> None:
        now = time.monotonic()
        while self._pending:
            fd, (conn, deadline, _) = next(iter(self._pending.items()))
            if deadline > now:
                return
            self._drop(fd, close=False)
            self._refuse(conn, 408, f"request headers not received within {self.limits.header_timeout:g}s")

    def _read_head(self, fd: int) -> None:
        entry = self._pending.get(fd)
        if entry is None:  # dropped earlier in this turn (pushed out by a newer connection)
            return
        conn, _, buf = entry
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(fd)
            return
        buf += chunk
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.limits.max_header:
                self._drop(fd, close=False)
                self._refuse(conn, 431, f"request headers larger than {self.limits.max_header} bytes")
            return
        self._drop(fd, close=False)
        if self._active >= self.limits.max_active:
            self._refuse(conn, 503, f"the engine is serving {self.limits.max_active} requests, its limit: try again later")
            return
        with self._active_lock:
            self._active += 1
        try:
            self._submit(self._serve, conn, bytes(buf[:end]), bytes(buf[end + 4:]))
        except BaseException:
            with self._active_lock:
                self._active -= 1
            conn.close()
            raise

    # ------------------------------------------------------------ worker -----

    def _serve(self, conn: socket.socket, head: bytes, rest: bytes) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(self.limits.send_timeout)
            ctx: dict[str, Any] = {}
            try:
                answer = self._handle(conn, head, rest, ctx)
            except HttpError as exc:
                answer = _answer(exc.status, {"message": str(exc)})
            if isinstance(answer, Hijack):
                conn.sendall(f"HTTP/1.0 101 UPGRADED\r\nContent-Type: {answer.content_type}\r\n"
                             "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
                conn.settimeout(None)  # an interactive session may be quiet for hours
                answer.run(ctx.get("rfile") or io.BufferedReader(_Prefixed(b"", conn)), conn)
            elif isinstance(answer, Stream):
                conn.sendall(_answer(200, None, "application/octet-stream"))
                for chunk in answer.chunks:
                    conn.sendall(chunk)
            else:
                conn.sendall(answer)
        except (OSError, TimeoutError):
            pass  # the client left or stopped reading
        finally:
            with self._active_lock:
                self._active -= 1
            try:
                conn.close()
            except OSError:
                pass

    def _handle(self, conn: socket.socket, head: bytes, rest: bytes, ctx: dict[str, Any]) -> bytes | Stream | Hijack:
        """The answer to one request; ``ctx["rfile"]``: the connection's bytes after the body."""
        req = _Request(head)
        found = self.router.match(req.method, req.path)
        if found is None:
            return _answer(404, {"message": f"page not found: {req.method} {_one_line(req.path, 100)}"})
        route, params = found
        from runtime.api import schemas  # pydantic: the engine's import, never the CLI's

        body: Any
        if req.headers.get("content-type", "").split(";")[0].strip() == RAW:
            if route.body not in (None, RAW):
                return _answer(415, {"message": f"{req.method} {req.path} takes a JSON body, not {RAW}"})
            length = req.content_length(1 << 62, required=False)
            ctx["rfile"] = io.BufferedReader(_Prefixed(rest, conn))
            body = RawBody(ctx["rfile"], length)
        else:
            if route.body == RAW:
                return _answer(415, {"message": f"{req.method} {req.path} takes an archive (Content-Type: {RAW})"})
            length = req.content_length(route.max_body or self.limits.max_body)
            req.body = self._read_body(conn, rest, length)
            ctx["rfile"] = io.BufferedReader(_Prefixed(rest[length:], conn))
            try:
                body = schemas.parse_body(route.body, req.body)
            except schemas.Invalid as exc:
                return _answer(400, {"message": str(exc)})
        try:
            query = schemas.parse_query(route.query, req.query)
        except schemas.Invalid as exc:
            return _answer(400, {"message": str(exc)})
        try:
            with self._test_switches(req):
                result = route.handler(body=body, query=query, **params)
        except NetcoreError as exc:
            return _answer(exc.status, {"message": _one_line(str(exc), 1000)})
        except Exception as exc:  # a bug: one line to the client, the traceback to the engine log
            log.exception("%s %s failed", req.method, req.path)
            return _answer(500, {"message": _one_line(f"internal error: {type(exc).__name__}: {exc}")})
        if isinstance(result, (Stream, Hijack)):
            return result
        if isinstance(result, Answer):
            return _answer(result.status, result.payload)
        return _answer(200 if result is not None else 204, result)

    def _test_switches(self, req: _Request) -> Any:
        """The request's own failure switch and step log (netcore/steps.py), in test mode only."""
        from netcore import steps

        if not self.test_mode:
            return contextlib.nullcontext()
        return steps.request_switches(req.headers.get("x-netcore-test-fail-step"), req.headers.get("x-netcore-test-step-log"))

    def _read_body(self, conn: socket.socket, rest: bytes, length: int) -> bytes:
        data = bytearray(rest[:length])
        conn.settimeout(self.limits.body_timeout)
        try:
            while len(data) < length:
                chunk = conn.recv(min(65536, length - len(data)))
                if not chunk:
                    raise HttpError(400, f"request body shorter than its Content-Length ({len(data)} of {length} bytes)")
                data += chunk
        except TimeoutError:
            raise HttpError(400, f"request body shorter than its Content-Length ({len(data)} of {length} bytes "
                                 f"after {self.limits.body_timeout:g}s)") from None
        finally:
            conn.settimeout(self.limits.send_timeout)
        return bytes(data)


def follow_file(
    path: str, done: Callable[[], bool], interval: float = 0.02, wait: Callable[[float], Any] = time.sleep
) -> Any:
    """Yield a file's content, then what is appended, until ``done()`` and nothing is left.

    Between polls it calls ``wait(interval)``: an event's ``wait`` that is set when the
    writer finishes ends the stream at once instead of up to ``interval`` later.
    """
    with open(path, "rb") as f:
        while True:
            chunk = f.read(65536)
            if chunk:
                yield chunk
                continue
            if done():
                rest = f.read()
                if rest:
                    yield rest
                return
            wait(interval)
