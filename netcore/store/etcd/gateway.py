"""The etcd v3 JSON gateway (``/v3/...``) as the store's modules speak to it: one place for HTTP.

Requests and leases go through ``etcd3gw``'s client (on a ``requests`` session that
never uses a proxy from the environment); every failure becomes one line that names
the store: ``StoreUnavailable`` when etcd cannot be reached or has no leader,
``StoreError`` when it answered and refused. Keys and values travel base64-encoded.
"""

from __future__ import annotations

import base64
import json
import re
import socket
from typing import Any

import requests
from etcd3gw import exceptions as gwexc
from etcd3gw.client import Etcd3Client

from netcore.errors import NetcoreError

__all__ = ["Gateway", "StoreUnavailable", "StoreError", "b64", "unb64", "range_end", "dumps"]

COMPACTED = 11  # gRPC OUT_OF_RANGE: "mvcc: required revision has been compacted"


class StoreUnavailable(NetcoreError):
    """The cluster store cannot be reached (or has no leader); one line, names the store."""

    status = 503


class StoreError(NetcoreError):
    """etcd answered, but refused the request (e.g. an unknown lease)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(data: str) -> bytes:
    return base64.b64decode(data)


def range_end(prefix: bytes) -> bytes:
    """The end of etcd's key range that holds exactly the keys starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Gateway:
    """One etcd endpoint: its address, timeout and a pooled client for plain requests."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        bracketed = f"[{host}]" if ":" in host else host
        self.netloc = f"{bracketed}:{port}"
        self.url = f"etcd://{self.netloc}"
        self.client = self.new_client()

    def new_client(self) -> Etcd3Client:
        """A client of its own (for a thread that must not wait behind the shared pool)."""
        session = requests.Session()
        session.trust_env = False  # never send cluster traffic through an HTTP proxy from the environment
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=64)
        session.mount("http://", adapter)
        return Etcd3Client(host=self.host, port=self.port, timeout=self.timeout, api_path="/v3/", session=session)

    def unreachable(self, why: str) -> StoreUnavailable:
        return StoreUnavailable(f"cluster store {self.url} is unreachable: {why}")

    def reason(self, exc: BaseException) -> str:
        """The one-line why of a failed request: etcd's own error, a timeout, or the socket's errno text."""
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

    def post(self, path: str, payload: dict[str, Any], client: Etcd3Client | None = None) -> dict[str, Any]:
        client = client or self.client
        try:
            return client.post(client.get_url(path), json=payload)
        except (gwexc.ConnectionFailedError, gwexc.ConnectionTimeoutError) as exc:
            raise self.unreachable(self.reason(exc)) from None
        except gwexc.Etcd3Exception as exc:
            try:
                body = json.loads(exc.detail_text or "")
                msg, code = str(body.get("error") or body.get("message")), body.get("code")
            except (ValueError, AttributeError):
                msg, code = (exc.detail_text or str(exc)).strip()[:200], None
            raise StoreError(f"cluster store {self.url} refused {path}: {msg}", code) from None
        except requests.RequestException as exc:
            raise self.unreachable(self.reason(exc)) from None

    def range(self, key: bytes, prefix: bool = False, **extra: Any) -> dict[str, Any]:
        """``/kv/range`` of one key, or of every key under ``key`` with ``prefix``."""
        payload: dict[str, Any] = {"key": b64(key), **extra}
        if prefix:
            payload["range_end"] = b64(range_end(key))
        return self.post("/kv/range", payload)

    def healthy(self) -> bool:
        try:
            resp = self.client.session.get(self.client.base_url + "/health", timeout=self.timeout)
            return resp.status_code == 200 and resp.json().get("health") == "true"
        except Exception:
            return False

    def close(self) -> None:
        self.client.session.close()
