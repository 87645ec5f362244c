"""The HTTP side of Docker's plugin protocol, as dockerd speaks it (moby ``pkg/plugins/client.go``).

``POST /<Iface>.<Method>`` with ``Accept: application/vnd.docker.plugins.v1.2+json``,
a newline-terminated JSON body (empty for calls without arguments), no Content-Type.
A 200 answer is JSON (an empty one is an error, as in Go); anything else carries
``{"Err": "..."}`` or a raw message. Unlike dockerd (no timeout for v1 plugins), every
call here is bounded: a plugin that hangs costs one request that long, never the engine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
from typing import Any

from netcore import PluginError

from drivers.remote.discovery import Location

__all__ = ["PluginClient", "NotImplementedCall", "call_timeout"]

ACCEPT = "application/vnd.docker.plugins.v1.2+json"


def call_timeout() -> float:
    """Seconds one call may take (``NETCORE_DOCKER_PLUGIN_TIMEOUT``, default 30)."""
    try:
        return max(0.1, float(os.environ.get("NETCORE_DOCKER_PLUGIN_TIMEOUT") or 30))
    except ValueError:
        return 30.0


class NotImplementedCall(PluginError):
    """The plugin answered 404: it does not implement an optional call."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("plugin.moby.localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class PluginClient:
    """Calls on one plugin; every failure is a ``PluginError`` naming the plugin and the call."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.name = location.name
        self._local = threading.local()  # one kept-alive connection per thread, as Go's client keeps them

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        loc = self.location
        if loc.scheme == "unix":
            return _UnixConnection(loc.address, timeout)
        host, _, port = loc.address.rpartition(":")
        if loc.scheme == "https":
            ctx = ssl.create_default_context(cafile=loc.tls.get("CAFile") or None)
            if loc.tls.get("InsecureSkipVerify"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if loc.tls.get("CertFile"):
                ctx.load_cert_chain(loc.tls["CertFile"], loc.tls.get("KeyFile") or None)
            return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def call(self, method: str, args: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """``POST /method`` and its decoded answer; ``args`` None sends an empty body."""
        limit = call_timeout() if timeout is None else timeout
        body = b"" if args is None else (json.dumps(args) + "\n").encode()
        try:
            resp, raw = self._exchange(method, body, limit)
        except (socket.timeout, TimeoutError):
            raise PluginError(f"plugin {self.name}: {method}: no answer within {limit:g} s") from None
        except FileNotFoundError:
            raise PluginError(f"plugin {self.name}: {method}: socket {self.location.address} is gone") from None
        except ConnectionRefusedError:
            raise PluginError(f"plugin {self.name}: {method}: connection refused (is the plugin running?)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PluginError(f"plugin {self.name}: {method}: {_reason(exc)}") from None
        text = raw.decode(errors="replace").strip()
        if resp.status == 404:
            raise NotImplementedCall(f"plugin {self.name}: {method}: not implemented")
        if resp.status != 200:
            msg = _err_of(text) or text or f"HTTP {resp.status}"
            raise PluginError(f"plugin {self.name}: {method}: {_one_line(msg)}")
        try:
            data = json.loads(text)
        except ValueError:
            raise PluginError(f"plugin {self.name}: {method}: answer is not JSON: {_one_line(text)[:80] or '(empty)'}") from None
        if not isinstance(data, dict):
            raise PluginError(f"plugin {self.name}: {method}: answer is not a JSON object")
        err = _get(data, "Err") or (_get(data, "Error") if method.startswith("IpamDriver.") else None)
        if err:
            raise PluginError(f"plugin {self.name}: {method}: {_one_line(str(err))}")
        return data


    def _exchange(self, method: str, body: bytes, limit: float) -> tuple[Any, bytes]:
        """One request on this thread's kept-alive connection; a connection the plugin closed
        meanwhile (it restarted) is replaced once, before anything was answered."""
        conn = getattr(self._local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self._local.conn = self._connection(limit)
        try:
            conn.timeout = limit
            if conn.sock is not None:
                conn.sock.settimeout(limit)
            try:
                conn.request("POST", "/" + method, body=body, headers={"Accept": ACCEPT})
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                conn.close()
                conn = self._local.conn = self._connection(limit)
                conn.request("POST", "/" + method, body=body, headers={"Accept": ACCEPT})
                resp = conn.getresponse()
            raw = resp.read()
            if resp.will_close:
                conn.close()
                self._local.conn = None
            return resp, raw
        except BaseException:
            conn.close()
            self._local.conn = None
            raise


def _get(data: dict[str, Any], key: str) -> Any:
    """A field the Go way: keys match case-insensitively."""
    if key in data:
        return data[key]
    low = key.lower()
    return next((v for k, v in data.items() if k.lower() == low), None)


def _err_of(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict):
        err = _get(data, "Err") or _get(data, "Error")
        return str(err) if err else None
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
