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
    Step,
    hookimpl,
    names,
    run_steps,
    undo_steps,
)

from drivers.overlay import sandbox as ovs
from drivers.overlay.plan import VNI, OverlayPlan, canonical_options, parse_vni, plan_network

__all__ = ["OverlayDriver"]


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

    def _local(self) -> str:
        """This host's underlay address (none without a cluster: then there is nothing to make)."""
        cluster = self.ctx.cluster if self.ctx is not None else None
        return cluster.advertise if cluster is not None else ""

    def _sandbox_steps(self, network: Network) -> tuple[Step, ...]:
        return ovs.sandbox_steps(self._plan(network), self.ctx.tag, self._local(), lambda: self._wanted(network))  # type: ignore[union-attr]

    def _vni_step(self, network: Network) -> Step:
        """The network's VNI, claimed in the cluster store (the kernel side comes with the first local container)."""

        def allocate(plan: OverlayPlan) -> None:
            vni = self._cluster().allocate_vni(network.id, plan.vni)
            network.options = {**canonical_options(network.options), VNI: str(vni)}

        def release(plan: OverlayPlan) -> None:
            cluster = self.ctx.cluster if self.ctx is not None else None
            if network.options.get(VNI) and cluster is not None:
                cluster.release_vni(parse_vni(network.options[VNI]), network.id)

        return Step("overlay.vni", allocate, release)

    # ----------------------------------------------------------------- network ---

    @hookimpl
    def create_network(self, network: Network) -> None:
        plan = self._plan(network)  # options checked before anything is allocated
        self._cluster()
        run_steps((self._vni_step(network),), plan)

    @hookimpl
    def restore_network(self, network: Network) -> None:
        """After a restart: the static entries become exactly what the store says (none stale)."""
        plan = self._plan(network)
        if ovs.exists(plan):
            ovs.sync_peers(plan, self._wanted(network))

    @hookimpl
    def delete_network(self, network: Network) -> None:
        """The namespace (if a local container was the last to leave, it is gone already) and the VNI."""
        steps = (self._vni_step(network), *self._sandbox_steps(network))
        undo_steps(steps, self._plan(network), f"delete network {network.name}")

    # ----------------------------------------------------------------- endpoint --

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        return InterfaceInfo.mac_from_ip(endpoint)

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        return None

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        """The network's namespace with the first local container, then the container's port."""
        plan = self._plan(network)
        self._cluster()
        steps = ovs.port_steps(plan, self.ctx.tag, self._local(), endpoint, sandbox.netns_path)  # type: ignore[union-attr]
        if not ovs.exists(plan):
            steps = (*self._sandbox_steps(network), *steps)
        run_steps(steps, plan)
        return JoinInfo(created_in_sandbox=True, gateway=None)

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        """The veth goes now, or with the container's netns on ``teardown``; the network's
        namespace goes with the last local container (ports of containers already gone but
        not yet reaped by the kernel do not count)."""
        plan = self._plan(network)
        if not ovs.exists(plan):
            return
        steps = ovs.port_steps(plan, self.ctx.tag, self._local(), endpoint, None, teardown)  # type: ignore[union-attr]
        live = {names.veth_name(d["id"]) for d in self.ctx.store.list("endpoint", parent=network.id) if d["id"] != endpoint.id}  # type: ignore[union-attr]
        if not ovs.other_ports(plan, endpoint.id) & live:  # the last local container leaves
            steps = (*self._sandbox_steps(network), *steps)
        undo_steps(steps, plan, f"leave network {network.name}")

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
