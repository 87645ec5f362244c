"""Docker's plugin HTTP, the server side: one unix socket per plugin name.

What dockerd needs (see ../shared/reference/plugin-protocols.md, A.2/A.3): ``POST
/<Iface>.<Method>``, bodies that may be empty and come without Content-Type, any Host
header; always a JSON answer (``{}`` at least: an empty 200 is an error to Go), 404 for
an unknown method, failures as 500 ``{"Err": "..."}`` (which IPAM reads too).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from netcore import NetcoreError

__all__ = ["PluginSocket", "Methods"]

log = logging.getLogger("netcore.dockerplugin")
CONTENT_TYPE = "application/vnd.docker.plugins.v1.1+json"
Methods = dict[str, Callable[[dict[str, Any]], dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    server: "PluginSocket"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s: " + fmt, self.server.name, *args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        method = self.path.split("?", 1)[0].lstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fn = self.server.methods.get(method)
        if fn is None:
            return self._send(404, {"Err": f"{self.server.name}: unknown method {method}"})
        try:
            args = json.loads(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            return self._send(400, {"Err": f"{method}: request body is not a JSON object: {exc}"})
        try:
            result = fn(args)
        except NetcoreError as exc:
            log.info("%s %s: %s", self.server.name, method, exc)
            return self._send(500, {"Err": str(exc)})
        except Exception as exc:  # a bug: one line to dockerd, the traceback to the log
            log.exception("%s %s failed", self.server.name, method)
            return self._send(500, {"Err": f"internal error: {type(exc).__name__}: {exc}"})
        self._send(200, result or {})


class PluginSocket(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One plugin name's socket, served by its own thread; ``close`` removes the file."""

    daemon_threads = True

    def __init__(self, name: str, path: str, methods: Methods) -> None:
        self.name, self.path, self.methods = name, path, methods
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: its server is gone, and a stale socket stalls dockerd
            else:
                raise NetcoreError(f"another process already serves plugin socket {path}")
            finally:
                probe.close()
        super().__init__(path, _Handler)
        os.chmod(path, 0o660)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.5}, name=f"plugin-{name}", daemon=True)

    def get_request(self) -> Any:
        conn, _ = self.socket.accept()
        return conn, (self.name, 0)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
