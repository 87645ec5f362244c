"""This engine's place in a cluster: the shared store, its lease, and what other hosts publish.

Global-scope state lives in etcd (``netcore.store.etcd``), under kinds of its own:

    node/<advertise>          this engine, while its lease lives
    network/<id>              global networks (a unique name across the cluster)
    pool/…, address/…         the global IPAM (``DefaultIpam`` on this store); container
                              addresses carry their engine's lease
    vni/<vni>                 {"network_id"}: a VXLAN id is taken by one create
    endpoint/<id>             every container endpoint on a global network, with the
                              advertised address of its host, under that host's lease

A host that vanishes loses its lease, and with it its endpoints and addresses: the
others see the deletions through their watch. Local-scope state never comes here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from netcore.errors import Conflict
from netcore.models import Endpoint

__all__ = ["Cluster", "NODE", "VNI", "VNI_FIRST"]

log = logging.getLogger("netcore.cluster")
NODE, VNI = "node", "vni"
VNI_FIRST, VNI_LAST = 4096, (1 << 24) - 1  # Docker's swarm range


class Cluster:
    """An engine's membership: ``join`` at start, ``close`` at stop."""

    def __init__(self, url: str, advertise: str, ttl: int = 15, store: Any = None) -> None:
        if store is None:
            from netcore.store.etcd import EtcdStore

            store = EtcdStore(url)
        self.url, self.advertise, self.ttl = url, advertise, ttl
        self.store = store
        self.lease: int | None = None
        self._cancels: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------ membership --

    def join(self) -> None:
        """Take a lease and register this node under it (again, after the lease was lost)."""
        with self._lock:
            self.lease = self.store.grant_lease(self.ttl)
            self.store.put(NODE, self.advertise, {"address": self.advertise}, lease=self.lease)

    def lease_id(self) -> int | None:
        return self.lease

    def nodes(self) -> list[str]:
        return sorted(n["address"] for n in self.store.list(NODE))

    def watch(self, kind: str, callback: Callable[[str, str, dict[str, Any] | None], None]) -> list[dict[str, Any]]:
        """A snapshot of ``kind`` and, from right after it, every change to ``callback``."""
        records, revision = self.store.list_with_revision(kind)  # the revision to watch from
        self._cancels.append(self.store.watch(kind, callback, start_revision=revision))
        return records

    def close(self) -> None:
        for cancel in self._cancels:
            try:
                cancel()
            except Exception as exc:  # best effort: the store is going anyway
                log.debug("cancel watch: %s", exc)
        self._cancels.clear()
        if self.lease is not None:
            try:
                self.store.revoke_lease(self.lease)
            except Exception as exc:
                log.debug("revoke lease: %s", exc)
        self.store.close()

    # ------------------------------------------------------------ VXLAN ids ----

    def allocate_vni(self, network_id: str, wanted: int | None = None) -> int:
        """``wanted`` if free, else the lowest free id from 4096; one atomic create decides races."""
        data = {"network_id": network_id}
        if wanted is not None:
            if not self.store.create(VNI, str(wanted), data):
                raise Conflict(f"VXLAN id {wanted} is already in use by another network")
            return wanted
        taken = {int(r["vni"]) for r in self.store.list(VNI) if "vni" in r}
        vni = VNI_FIRST
        while vni <= VNI_LAST:
            if vni not in taken and self.store.create(VNI, str(vni), {**data, "vni": vni}):
                return vni
            taken.add(vni)
            vni += 1
        raise Conflict("no free VXLAN id left")

    def release_vni(self, vni: int, network_id: str) -> None:
        """Give a VNI back, unless it already belongs to another network (a late delete)."""
        rec = self.store.get(VNI, str(vni))
        if rec is not None and rec.get("network_id") == network_id:
            self.store.delete(VNI, str(vni))

    # ------------------------------------------------------------ endpoints ----

    def publish(self, endpoint: Endpoint) -> None:
        """Tell the cluster where ``endpoint`` lives (under this engine's lease)."""
        self.store.put("endpoint", endpoint.id, endpoint.to_dict(), parent=endpoint.network_id, lease=self.lease)

    def withdraw(self, endpoint_id: str) -> None:
        self.store.delete("endpoint", endpoint_id)

    def endpoints(self, network_id: str | None = None) -> list[Endpoint]:
        return [Endpoint.from_dict(d) for d in self.store.list("endpoint", parent=network_id)]

    def peers(self, network_id: str) -> list[Endpoint]:
        """Endpoints of ``network_id`` on the other hosts."""
        return [ep for ep in self.endpoints(network_id) if ep.host != self.advertise]
