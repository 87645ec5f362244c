"""The overlay driver: one L2 network across hosts, VXLAN between them, state in the cluster store.

Global scope: the network, its IPAM and its VNI live in the cluster store (etcd), so
every engine of the cluster sees the network. Per host the kernel side exists only
while a local container is on the network (``sandbox.py``). Remote containers are
programmed statically from the store (``peer_add``/``peer_delete``, which the core
calls from its watch of the store), never learned or flooded. Containers get no
default route here: the core gives them one on the local gateway bridge.
"""

from __future__ import annotations

from typing import Any

from netcore import (
    GLOBAL,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    InvalidConfig,
    JoinInfo,
    Network,
    Sandbox,
    hookimpl,
    names,
)

from drivers.overlay import sandbox as ovs
from drivers.overlay.plan import VNI, OverlayPlan, canonical_options, plan_network

__all__ = ["OverlayDriver", "plugin"]


class OverlayDriver:
    def __init__(self) -> None:
        self.ctx: EngineContext | None = None

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.ctx = context

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="overlay", data_scope=GLOBAL, connectivity_scope=GLOBAL)

    def _cluster(self) -> Any:
        assert self.ctx is not None, "overlay driver used before configure()"
        if self.ctx.cluster is None:
            raise InvalidConfig(
                "the overlay driver needs a cluster: start the engine with --cluster-store etcd://HOST:PORT --cluster-advertise ADDRESS"
            )
        return self.ctx.cluster

    def _plan(self, network: Network) -> OverlayPlan:
        assert self.ctx is not None, "overlay driver used before configure()"
        return plan_network(network, self.ctx.tag)

    def _wanted(self, network: Network) -> set[tuple[str, str, str]]:
        return {(ep.ip, ep.mac, ep.host) for ep in self._cluster().peers(network.id) if ep.ip and ep.mac and ep.host}

    # ----------------------------------------------------------------- network ---

    @hookimpl
    def create_network(self, network: Network) -> None:
        plan = self._plan(network)  # options checked before anything is allocated
        vni = self._cluster().allocate_vni(network.id, plan.vni)
        network.options = {**canonical_options(network.options), VNI: str(vni)}

    @hookimpl
    def restore_network(self, network: Network) -> None:
        """After a restart: the static entries become exactly what the store says (none stale)."""
        plan = self._plan(network)
        if ovs.exists(plan):
            ovs.sync_peers(plan, self._wanted(network))

    @hookimpl
    def delete_network(self, network: Network) -> None:
        plan = self._plan(network)
        if ovs.exists(plan):
            ovs.destroy(plan)
        if plan.vni is not None and self.ctx is not None and self.ctx.cluster is not None:
            self.ctx.cluster.release_vni(plan.vni, network.id)

    # ----------------------------------------------------------------- endpoint --

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        if endpoint.mac or not endpoint.address:
            return None
        return InterfaceInfo(mac=names.mac_from_ipv4(endpoint.address))

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        return None

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        plan, cluster = self._plan(network), self._cluster()
        created = ovs.ensure(plan, self.ctx.tag, cluster.advertise)  # type: ignore[union-attr]
        try:
            if created:
                ovs.sync_peers(plan, self._wanted(network))
            ovs.add_port(plan, self.ctx.tag, cluster.advertise, endpoint, sandbox.netns_path)  # type: ignore[union-attr]
        except BaseException:
            if created:
                ovs.destroy(plan)
            raise
        return JoinInfo(created_in_sandbox=True, gateway=None)

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        """The veth goes now, or with the container's netns on ``teardown``; the network's
        namespace goes with the last local container (ports of containers already gone but
        not yet reaped by the kernel do not count)."""
        plan = self._plan(network)
        if not ovs.exists(plan):
            return
        ports = ovs.remove_port(plan, endpoint.id, delete=not teardown)
        live = {names.veth_name(d["id"]) for d in self.ctx.store.list("endpoint", parent=network.id) if d["id"] != endpoint.id}  # type: ignore[union-attr]
        if not ports & live:
            ovs.destroy(plan)  # the last local container left

    # ----------------------------------------------------------------- peers -----

    @hookimpl
    def peer_add(self, network: Network, endpoint: Endpoint) -> None:
        plan = self._plan(network)
        if ovs.exists(plan) and endpoint.ip and endpoint.mac and endpoint.host:
            ovs.add_peer(plan, endpoint.ip, endpoint.mac, endpoint.host)

    @hookimpl
    def peer_delete(self, network: Network, endpoint: Endpoint) -> None:
        plan = self._plan(network)
        if ovs.exists(plan) and endpoint.ip and endpoint.mac and endpoint.host:
            ovs.delete_peer(plan, endpoint.ip, endpoint.mac, endpoint.host)

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
        plan = self._plan(network)
        return {"vni": plan.vni, "overlay_netns": plan.netns, "host_interface": names.veth_name(endpoint.id)}


plugin = OverlayDriver()
