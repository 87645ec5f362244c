"""etcd leases kept alive from one daemon thread per store.

A lease is renewed every third of its TTL. A renewal that fails is retried soon while
the lease can still be alive on the server; once a whole TTL passed without a
successful renewal (or etcd says it expired) the lease is lost and ``on_lost`` is
told, so that the engine re-registers its records under a new lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from netcore.errors import NetcoreError
from netcore.store.etcd.gateway import Gateway, StoreError

__all__ = ["Leases"]

log = logging.getLogger("netcore.store.etcd")


@dataclass
class _Lease:
    ttl: int
    last_ok: float
    due: float


class Leases:
    """The leases one store granted and keeps alive until they are revoked or the store closes."""

    def __init__(self, gateway: Gateway, on_lost: Callable[[int, str], None]) -> None:
        self.gateway = gateway
        self.on_lost = on_lost
        self._lock = threading.Lock()
        self._leases: dict[int, _Lease] = {}
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds, kept alive until ``revoke`` or ``close``."""
        resp = self.gateway.post("/lease/grant", {"TTL": int(ttl), "ID": 0})
        lease_id, granted = int(resp["ID"]), int(resp.get("TTL", ttl))
        now = time.monotonic()
        with self._lock:
            self._leases[lease_id] = _Lease(granted, now, now + max(granted / 3, 0.2))
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._loop, name="etcd-keepalive", daemon=True)
                self._thread.start()
        self._wake.set()
        return lease_id

    def revoke(self, lease: int) -> None:
        """Stop keeping ``lease`` alive and revoke it: its records vanish now."""
        with self._lock:
            self._leases.pop(lease, None)
        try:
            self.gateway.post("/kv/lease/revoke", {"ID": lease})
        except StoreError as exc:
            if "lease not found" not in str(exc):
                raise

    def close(self) -> None:
        """Stop renewing (the leases expire by their TTL) and wait for the thread."""
        self._closed.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _lose(self, lease_id: int, why: str) -> None:
        with self._lock:
            if self._leases.pop(lease_id, None) is None:
                return
        log.warning("cluster store %s: lease %x lost: %s", self.gateway.url, lease_id, why)
        self.on_lost(lease_id, why)

    def _loop(self) -> None:
        client = self.gateway.new_client()
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
                        resp = self.gateway.post("/lease/keepalive", {"ID": lid}, client)
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
                    self._wake.wait(max(0.0, min(nxt - time.monotonic(), 1.0)))
                    self._wake.clear()
        finally:
            client.session.close()
