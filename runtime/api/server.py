"""The engine's API: JSON over HTTP on a unix socket, Docker-like paths.

Errors answer with the category's status and ``{"message": "..."}``; the client
prints the message as the one line users see.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from netcore import NetcoreError

__all__ = ["ApiServer", "Router", "RawBody", "RAW"]

log = logging.getLogger("netcore.api")
Handler = Callable[..., Any]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile("^" + pattern + "$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for m, rx, handler in self.routes:
            hit = rx.match(path)
            if m == method and hit:
                return handler, hit.groupdict()
        return None


RAW = "application/x-tar"


class RawBody:
    """A raw request body: ``Content-Length`` bytes, or (none given) up to the client's half-close."""

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


class Stream:
    """A handler's streaming answer: ``chunks`` yields bytes until done."""

    def __init__(self, chunks: Any) -> None:
        self.chunks = chunks


class _RequestHandler(BaseHTTPRequestHandler):
    server: "ApiServer"
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug(fmt, *args)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        found = self.server.router.match(method, url.path)
        if found is None:
            return self._send(404, {"message": f"page not found: {method} {url.path}"})
        handler, params = found
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body: Any = None
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Content-Type") == RAW:  # an archive, read by the handler as it arrives
            body = RawBody(self.rfile, length if self.headers.get("Content-Length") else None)
        elif length:
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                return self._send(400, {"message": "request body is not valid JSON"})
        try:
            result = handler(body=body, query=query, **params)
        except NetcoreError as exc:
            return self._send(exc.status, {"message": str(exc)})
        except Exception as exc:  # a bug: one line to the client, the traceback to the engine log
            log.exception("%s %s failed", method, url.path)
            return self._send(500, {"message": f"internal error: {type(exc).__name__}: {exc}"})
        if isinstance(result, Stream):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            try:
                for chunk in result.chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        return self._send(200 if result is not None else 204, result)

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


class ApiServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: str, router: Router) -> None:
        self.router = router
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
        super().__init__(path, _RequestHandler)
        os.chmod(path, 0o660)

    def server_bind(self) -> None:
        socketserver.UnixStreamServer.server_bind(self)
        self.server_name, self.server_port = "netcore", 0

    def get_request(self) -> Any:
        conn, _ = self.socket.accept()
        return conn, ("netcore", 0)


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
