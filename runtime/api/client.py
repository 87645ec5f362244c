"""The CLI's side of the API: JSON over HTTP on the engine's unix socket.

Kept small so the client starts fast: the engine answers HTTP/1.0 (one request per
connection, the body runs to the end of the stream), which a few lines on a raw
socket speak. Every import here is paid by every command, so: no ``http.client``
(it pulls in the email package), the C ``_socket`` rather than ``socket.py`` (enum
conversions and selectors), no ``typing`` at run time, and ``urllib.parse`` only for
names that need quoting (their costs: docs/performance.md). If no engine answers on the
default socket, the client starts one (``netcore daemon``, see ``runtime.api.autostart``).

Every failure of the connection (refused, reset, a full listen backlog that outlasts
the retries, a timeout) is an ``ApiError``: the CLI prints one line, never a traceback.
"""

from __future__ import annotations

import _socket
import json
import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers read it as True
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

__all__ = ["Client", "ApiError", "DEFAULT_SOCKET", "DEFAULT_ROOT", "socket_path"]

DEFAULT_SOCKET = "/run/netcore/netcore.sock"
DEFAULT_ROOT = "/var/lib/netcore"  # = netcore.names.DEFAULT_ROOT, not imported: the client stays light


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def socket_path(host: str | None) -> str:
    """``unix:///path`` (or a bare path) -> the path."""
    host = host or os.environ.get("NETCORE_HOST") or f"unix://{DEFAULT_SOCKET}"
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if "://" in host:
        raise ApiError(0, f"unsupported host {host!r}: only unix:///path is supported")
    return host


class _Response:
    """Status and the body's stream of one HTTP/1.0 answer; the headers are skipped."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            head += chunk
        if not head:
            raise ConnectionResetError("the engine closed the connection without an answer")
        head, _, self._pending = head.partition(b"\r\n\r\n")
        try:
            self.status = int(head.split(None, 2)[1])
        except (IndexError, ValueError):
            raise ApiError(0, "the netcore engine sent a malformed answer") from None

    def read(self) -> bytes:
        """The whole body: everything until the engine closes the connection."""
        try:
            return b"".join([self._pending, *iter(lambda: self.sock.recv(65536), b"")])
        finally:
            self.close()

    def read1(self, n: int) -> bytes:
        """The next chunk of the body as it arrives; b"" at its end."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        return self.sock.recv(n)

    def close(self) -> None:
        self.sock.close()


CONNECT_RETRY = 10.0  # seconds a client retries while the engine's listen backlog is full (EAGAIN)


def _connect(path: str, timeout: float | None) -> _socket.socket:
    """A connected socket; EAGAIN (the engine's backlog is full: a burst of clients) is retried."""
    deadline = None
    delay = 0.002
    while True:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            now = time.monotonic()
            deadline = deadline or now + CONNECT_RETRY
            if now >= deadline:
                raise ApiError(0, f"the netcore engine at unix://{path} is not accepting connections (its backlog is full): try again") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        except BaseException:
            sock.close()
            raise


def _send(path: str, method: str, url: str, data: bytes | None, timeout: float | None,
          content_type: str = "application/json", headers: str = "") -> _Response:
    sock = _connect(path, timeout)
    try:
        head = f"{method} {url} HTTP/1.0\r\nHost: netcore\r\n{headers}{_test_headers()}"
        if data is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
        sock.sendall(head.encode() + b"\r\n" + (data or b""))
        return _Response(sock)
    except BaseException:
        sock.close()
        raise


_TEST_HEADERS = (("NETCORE_TEST_REQUEST_FAIL_STEP", "X-Netcore-Test-Fail-Step"),
                 ("NETCORE_TEST_REQUEST_STEP_LOG", "X-Netcore-Test-Step-Log"))


def _test_headers() -> str:
    """The per-request test switches (netcore/steps.py), from the environment: honoured only
    by an engine started with NETCORE_TEST_MODE=1."""
    return "".join(f"{h}: {os.environ[v]}\r\n" for v, h in _TEST_HEADERS if os.environ.get(v))


def _lost(path: str, exc: OSError) -> ApiError:
    """One line for a connection that failed after it was made."""
    if isinstance(exc, TimeoutError):
        return ApiError(0, f"the netcore engine at unix://{path} did not answer in time")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return ApiError(0, f"the netcore engine at unix://{path} closed the connection (was it stopped?)")
    return ApiError(0, f"lost the connection to the netcore engine at unix://{path}: {exc.strerror or exc}")


class Client:
    """``autostart``: start an engine if none answers (only ever for the default socket;
    ``NETCORE_NO_AUTOSTART=1`` turns it off)."""

    def __init__(self, host: str | None = None, root: str | None = None, autostart: bool = True) -> None:
        self.path = socket_path(host)
        self.root = root or os.environ.get("NETCORE_ROOT") or DEFAULT_ROOT
        self.autostart = autostart

    def _open(self, method: str, url: str, body: Any, timeout: float | None, raw: bytes | None = None,
              content_type: str = "application/json", headers: str = "") -> _Response:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            try:
                return _send(self.path, method, url, data, timeout, content_type, headers)
            except (FileNotFoundError, ConnectionRefusedError):
                if attempt:
                    raise ApiError(0, f"cannot connect to the netcore engine at unix://{self.path}: is the engine running?") from None
                self._start_engine()
            except OSError as exc:
                raise _lost(self.path, exc) from None
        raise AssertionError("unreachable")

    def _start_engine(self) -> None:
        """Make an engine answer on this socket, starting one only where the client may
        (``runtime.api.autostart``); else one line that says how to start one."""
        from runtime.api import autostart

        autostart.ensure_engine(self.path, self.root, allowed=self.autostart)

    def request(self, method: str, url: str, body: Any = None, query: dict[str, Any] | None = None, timeout: float | None = 120) -> Any:
        if query:
            url += "?" + _urlencode(query)
        resp = self._open(method, url, body, timeout)
        try:
            raw = resp.read()
        except OSError as exc:
            raise _lost(self.path, exc) from None
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
            if resp.status < 400:
                raise ApiError(0, "the netcore engine sent a malformed answer") from None
        if resp.status >= 400:
            message = payload.get("message") if isinstance(payload, dict) else raw.decode(errors="replace").strip()
            raise ApiError(resp.status, message or f"HTTP {resp.status}")
        return payload

    def upload(self, url: str, fd: int, query: dict[str, Any] | None = None, timeout: float | None = None, method: str = "POST") -> Any:
        """POST (or PUT: ``cp``) an archive from file descriptor ``fd`` as it is read (``load``, ``import``); the JSON answer.

        A regular file goes with its length, by sendfile; a pipe goes until its end and a
        half-close. The engine may answer (an error) before it has read everything."""
        if query:
            url += "?" + _urlencode(query)
        import stat

        st = os.fstat(fd)
        start = os.lseek(fd, 0, os.SEEK_CUR) if stat.S_ISREG(st.st_mode) else 0
        size = st.st_size - start if stat.S_ISREG(st.st_mode) else None
        head = f"{method} {url} HTTP/1.0\r\nHost: netcore\r\nContent-Type: application/x-tar\r\n"
        head += f"Content-Length: {size}\r\n" if size is not None else ""
        for attempt in (0, 1):
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if attempt or not self.autostart:
                    raise ApiError(0, f"cannot connect to the netcore engine at unix://{self.path}: is the engine running?") from None
                self._start_engine()
        try:
            sock.sendall(head.encode() + b"\r\n")
            if size is not None:
                offset, end = start, start + size
                while offset < end:
                    sent = os.sendfile(sock.fileno(), fd, offset, min(end - offset, 1 << 30))
                    if not sent:
                        break
                    offset += sent
            else:
                while chunk := os.read(fd, 1 << 20):
                    sock.sendall(chunk)
                sock.shutdown(_socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the engine answered early (an error): read it
        except BaseException:
            sock.close()
            raise
        try:
            resp = _Response(sock)
            raw = resp.read()
        except ConnectionResetError:
            sock.close()
            raise ApiError(0, "the netcore engine closed the connection before it answered") from None
        payload = json.loads(raw) if raw else None
        if resp.status >= 400:
            message = payload.get("message") if isinstance(payload, dict) else raw.decode(errors="replace")
            raise ApiError(resp.status, message or f"HTTP {resp.status}")
        return payload

    def json_lines(self, url: str, query: dict[str, Any] | None = None, method: str = "GET", raw: bytes | None = None,
                   content_type: str = "application/json") -> Iterator[dict[str, Any]]:
        """Yield the messages of a streaming answer of JSON lines (Docker's build progress)."""
        pending = b""
        for chunk in self.stream(url, query, method=method, raw=raw, content_type=content_type):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def stream(self, url: str, query: dict[str, Any] | None = None, method: str = "GET", raw: bytes | None = None,
               content_type: str = "application/json") -> Iterator[bytes]:
        """Yield raw chunks of a streaming answer until the engine closes it (``raw``: a body
        sent as is, such as a build context tar)."""
        if query:
            url += "?" + _urlencode(query)
        resp = self._open(method, url, None, None, raw, content_type)
        try:
            if resp.status >= 400:
                try:
                    payload = json.loads(resp.read() or b"{}")
                except ValueError:
                    payload = {}
                raise ApiError(resp.status, payload.get("message", f"HTTP {resp.status}"))
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    return
                yield chunk
        except OSError as exc:
            raise _lost(self.path, exc) from None
        finally:
            resp.close()

    def begin(self, method: str, url: str, query: dict[str, Any] | None = None, upgrade: bool = False) -> _Response:
        """Send a request and return once the answer's status is in; its body is read later
        (``wait?condition=next-exit``). ``upgrade``: Docker's hijacked connection (attach):
        after ``101`` the socket carries the container's streams both ways."""
        if query:
            url += "?" + _urlencode(query)
        try:
            resp = self._open(method, url, None, None, headers="Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else "")
            if resp.status < 400:
                return resp
            raw = resp.read()
        except OSError as exc:
            raise _lost(self.path, exc) from None
        try:
            message = json.loads(raw).get("message")
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace").strip()
        raise ApiError(resp.status, message or f"HTTP {resp.status}")


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def q(ref: str) -> str:
    """``ref`` quoted for a URL path or query; names and ids need no quoting, and no urllib."""
    if _UNRESERVED.issuperset(ref):
        return ref
    from urllib.parse import quote

    return quote(ref, safe="")


def _urlencode(query: dict[str, Any]) -> str:
    return "&".join(f"{q(str(k))}={q(str(v))}" for k, v in query.items())
