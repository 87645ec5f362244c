"""The bridge driver: one Linux bridge per network, a veth pair per endpoint.

Kernel work per network is the step table below; an endpoint is a single veth
pair whose container end is created directly inside the sandbox under its final
name (eth0, eth1 ...), so a join is one netlink call plus the core's addressing.
A leave deletes the pair, except when the whole sandbox goes: the kernel then
destroys it with the sandbox's netns, in the background.
"""

from __future__ import annotations

from typing import Any

from netcore import (
    AlreadyExists,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    JoinInfo,
    KernelError,
    Network,
    Sandbox,
    Step,
    hookimpl,
    names,
    run_steps,
    undo_steps,
)
from netcore.osl import links, netns, sysctl

from drivers.bridge import device, firewall
from drivers.bridge.plan import BridgePlan, plan_network

__all__ = ["BridgeDriver"]


class BridgeDriver:
    def __init__(self) -> None:
        self.ctx: EngineContext | None = None

    # ----------------------------------------------------------------- engine ----

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.ctx = context

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="bridge", gateway_bridge=True, gateway_options={"icc": "false"})  # docker_gwbridge: icc off

    def _plan(self, network: Network) -> BridgePlan:
        assert self.ctx is not None, "bridge driver used before configure()"
        return plan_network(network, self.ctx.tag)

    def _steps(self) -> tuple[Step, ...]:
        fw = self.ctx.firewall  # type: ignore[union-attr]
        return (
            Step("bridge.device", device.create, device.delete),
            Step("bridge.gateway", device.add_gateway),  # no undo: the address goes with the device
            Step("bridge.forwarding", device.enable_forwarding, when=lambda p: not p.internal),
            Step("bridge.firewall", lambda p: fw.apply(firewall.program(p, fw.family, fw.table)), lambda p: _unprogram(fw, p)),
        )

    # ----------------------------------------------------------------- network ---

    @hookimpl
    def create_network(self, network: Network) -> None:
        plan = self._plan(network)
        with netns.host() as ipr:
            if links.lookup(ipr, plan.bridge) is not None:
                raise AlreadyExists(f"bridge {plan.bridge} already exists on this host")
        run_steps(self._steps(), plan)

    @hookimpl
    def restore_network(self, network: Network, endpoints: list[Endpoint]) -> None:
        plan = self._plan(network)
        steps = self._steps()
        if device.exists(plan):
            run_steps(tuple(s for s in steps if s.name == "bridge.firewall"), plan)
            return
        run_steps(steps, plan)
        with netns.host() as ipr:  # a new bridge has no ports: take the surviving veths back
            bridge = links.lookup(ipr, plan.bridge)
            for ep in endpoints:
                index = links.lookup(ipr, names.veth_name(ep.id))
                if index is not None and bridge is not None:
                    links.set_master(ipr, index, bridge)
                    if not plan.icc or ep.ports:
                        links.set_bridge_port(ipr, index, isolated=not plan.icc or None, hairpin=bool(ep.ports) or None)

    @hookimpl
    def delete_network(self, network: Network) -> None:
        undo_steps(self._steps(), self._plan(network), f"delete network {network.name}")

    # ----------------------------------------------------------------- endpoint --

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        return InterfaceInfo.mac_from_ip(endpoint)

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        return None  # the veth pair lives and dies with the join

    def _join_steps(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> tuple[Step, ...]:
        """The veth pair, its container end made in the sandbox under its final name, then
        the host end's port flags (no IPv6 on it: still without carrier, it has no address yet)."""
        host_end = names.veth_name(endpoint.id)

        def veth(p: BridgePlan) -> None:
            with netns.host() as ipr:
                bridge = links.lookup(ipr, p.bridge)
                if bridge is None:
                    raise KernelError("join", p.bridge, "bridge device is missing")
                links.create_veth(
                    ipr,
                    host_end,
                    names.link_alias(self.ctx.tag, endpoint.id),  # type: ignore[union-attr]
                    peer_name=endpoint.ifname,
                    peer_netns=sandbox.netns_path,
                    peer_mac=endpoint.mac,
                    mtu=p.mtu,
                    master=bridge,
                )

        def unveth(p: BridgePlan) -> None:
            with netns.host() as ipr:
                links.delete(ipr, host_end)

        def port(p: BridgePlan) -> None:
            sysctl.disable_ipv6(host_end)
            if not p.icc or sandbox.ports:
                with netns.host() as ipr:
                    index = links.lookup(ipr, host_end)
                    if index is None:
                        raise KernelError("join", host_end, "the veth vanished")
                    links.set_bridge_port(ipr, index, isolated=not p.icc or None, hairpin=bool(sandbox.ports) or None)

        return (Step("bridge.veth", veth, unveth), Step("bridge.port", port))  # the port's flags go with the veth

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        plan = self._plan(network)
        run_steps(self._join_steps(network, endpoint, sandbox), plan)
        return JoinInfo(created_in_sandbox=True, gateway=None if plan.internal else network.gateway)

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        if teardown:
            return  # the veth goes with its peer when the core deletes the sandbox's netns
        undo_steps(self._join_steps(network, endpoint, sandbox), self._plan(network), f"leave network {network.name}")

    @hookimpl
    def program_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        if endpoint.ports and endpoint.ip:
            self.ctx.firewall.publish(endpoint.ip, endpoint.ports)  # type: ignore[union-attr]

    @hookimpl
    def revoke_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        if endpoint.ports:
            self.ctx.firewall.unpublish(endpoint.ports)  # type: ignore[union-attr]

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
        return {"bridge": self._plan(network).bridge, "host_interface": names.veth_name(endpoint.id)}


def _unprogram(fw: Any, plan: BridgePlan) -> None:
    """Remove the network's chains and map elements in one transaction; if some were gone
    already (nft refuses the batch as a whole), list the table and remove what is left."""
    try:
        fw.apply(firewall.unprogram(plan, fw.family, fw.table, set(firewall.chains(plan))))
    except KernelError:
        fw.apply(firewall.unprogram(plan, fw.family, fw.table, {o["chain"]["name"] for o in fw.list() if "chain" in o}))
