"""The collaborators every controller operation shares, and the lookups over the store.

``Core`` is handed to each operation module (networks, endpoints, sandboxes,
reconcile, cluster sync): one place for the store, the hooks, the kernel, the
firewall, the cluster and the lock, so none of them reaches into another's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netcore import names
from netcore.controller.deps import EngineFirewall
from netcore.errors import NetcoreError, NotFound
from netcore.ipam import DefaultIpam
from netcore.models import GLOBAL, DriverInfo, Endpoint, Network, Sandbox
from netcore.osl.kernel import Kernel
from netcore.plugins import Hooks
from netcore.ports import PortAllocator
from netcore.store import Store

if TYPE_CHECKING:
    from netcore.cluster import Cluster

__all__ = ["Core", "NETWORK", "ENDPOINT", "SANDBOX", "INTENT", "GLOBAL_IPAM", "log"]

log = logging.getLogger("netcore.controller")
NETWORK, ENDPOINT, SANDBOX = "network", "endpoint", "sandbox"
INTENT = "intent"  # an operation under way: what reconcile undoes if the engine died in it
GLOBAL_IPAM = "global-default"  # the default IPAM on the cluster store, for global networks


@dataclass
class Core:
    """The engine's store, hooks, kernel, firewall and cluster, and the lock that serialises operations."""

    root: str
    store: Store
    firewall: EngineFirewall
    kernel: Kernel
    hooks: Hooks
    ipam: DefaultIpam
    cluster: Cluster | None = None  # None on a single host
    global_ipam: DefaultIpam | None = None
    ports: PortAllocator = field(default_factory=PortAllocator)
    lock: threading.RLock = field(default_factory=threading.RLock)
    tag: str = ""

    def __post_init__(self) -> None:
        self.tag = self.tag or names.engine_tag(self.root)

    # ------------------------------------------------------------ lookups -----

    def networks(self) -> list[Network]:
        nets = [Network.from_dict(d) for d in self.store.list(NETWORK)]
        return sorted(nets, key=lambda n: n.name)

    def network(self, ref: str) -> Network:
        """A network by name, id, or unique id prefix (like Docker)."""
        data = self.store.find(NETWORK, ref) or self.store.get(NETWORK, ref)
        if data is None and len(ref) >= 3:
            hits = [d for d in self.store.list(NETWORK) if d["id"].startswith(ref)]
            if len(hits) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(hits)} matches)")
            data = hits[0] if hits else None
        if data is None:
            raise NotFound(f"network {ref} not found")
        return Network.from_dict(data)

    def endpoints(self, network: Network) -> list[Endpoint]:
        return [Endpoint.from_dict(d) for d in self.store.list(ENDPOINT, parent=network.id)]

    def sandbox(self, sandbox_id: str) -> Sandbox | None:
        data = self.store.get(SANDBOX, sandbox_id)
        return Sandbox.from_dict(data) if data else None

    def sandboxes(self) -> list[Sandbox]:
        return [Sandbox.from_dict(d) for d in self.store.list(SANDBOX)]

    def sandbox_endpoints(self, sandbox: Sandbox) -> list[Endpoint]:
        out = []
        for eid in sandbox.endpoints:
            data = self.store.get(ENDPOINT, eid)
            if data:
                out.append(Endpoint.from_dict(data))
        return out

    def driver_info(self, driver: str) -> DriverInfo:
        return self.hooks.driver(driver).driver_info() or DriverInfo(name=driver)

    def ipam_of(self, net: Network) -> Any:
        """The IPAM of a network; ``default`` on a global network means the cluster's."""
        name = GLOBAL_IPAM if net.scope == GLOBAL and net.ipam_driver == "default" else net.ipam_driver
        return self.hooks.ipam(name)

    def cluster_of(self, net: Network) -> Cluster | None:
        """The cluster, when ``net`` is one of its networks."""
        return self.cluster if net.scope == GLOBAL else None

    def intend(self, ident: str, op: str, **data: Any) -> None:
        """Write down an operation before its first kernel change; its commit deletes the note.

        An engine killed in between leaves the note, and reconcile undoes what it says
        (``Reconciler.undo_intents``): the store, IPAM and the kernel converge to "never happened".
        """
        self.store.put(INTENT, ident, {"op": op, **data})

    def restore_networks(self, networks: list[Network]) -> None:
        """Each driver puts its networks' kernel state back (idempotent); a failure is logged."""
        for net in networks:
            try:
                self.hooks.driver(net.driver).restore_network(network=net, endpoints=self.endpoints(net))
            except NetcoreError as exc:
                log.warning("restore network %s: %s", net.name, exc)

    def republish_ports(self, hold: bool) -> None:
        """Drivers program every stored published port again (``hold``: take the host ports too)."""
        for sandbox in self.sandboxes():
            for ep in self.sandbox_endpoints(sandbox):
                if not ep.ports:
                    continue
                net = self.network(ep.network_id)
                if hold and not sandbox.external:  # a CNI runtime holds its own host ports (the portmap convention)
                    self.ports.hold(ep.ports)
                try:
                    self.hooks.driver(net.driver).program_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
                except NetcoreError as exc:
                    log.warning("restore published ports of %s: %s", ep.name, exc)
