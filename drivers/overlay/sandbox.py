"""One overlay network's namespace on this host: br0 with the gateway, vxlan0, the containers' ports.

It exists while at least one local container is on the network (Docker's overlay
sandbox). The VXLAN device is made in the engine's own namespace, where the
underlay is, then moved in: its UDP socket stays behind, so encapsulated packets
are routed by the host. Learning is off and nothing floods: remote containers are
static FDB (MAC -> remote VTEP) and neighbour (IP -> MAC) entries, and the device's
proxy answers ARP for them locally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netcore import KernelError, Step, names
from netcore.osl import addrs, links, neigh, netns, sysctl

from drivers.overlay.plan import ENCAP, OverlayPlan

__all__ = ["path", "exists", "sandbox_steps", "destroy", "port_steps", "other_ports", "sync_peers", "add_peer", "delete_peer", "underlay_mtu"]

BRIDGE, VXLAN = "br0", "vxlan0"


def path(plan: OverlayPlan) -> str:
    return f"{netns.NETNS_DIR}/{plan.netns}"


def exists(plan: OverlayPlan) -> bool:
    return netns.exists(path(plan))


def underlay_mtu(local: str) -> int:
    """MTU of the host's interface that holds the advertised address (1500 if none does)."""
    with netns.host() as ipr:
        name = addrs.owner(local, ipr)
        index = links.lookup(ipr, name) if name is not None else None
        link = links.get(ipr, index) if index is not None else None
    return link.mtu if link is not None and link.mtu else 1500


def mtu(plan: OverlayPlan, local: str) -> int:
    return plan.mtu or underlay_mtu(local) - ENCAP


def sandbox_steps(plan: OverlayPlan, tag: str, local: str, wanted: Callable[[], set[tuple[str, str, str]]]) -> tuple[Step, ...]:
    """The network's namespace with br0 (the gateway) and vxlan0 (made where the underlay is,
    then moved in), and the static entries of the remote containers. Its undo, the
    namespace's removal, takes everything in it along."""
    sizes: dict[str, int] = {}

    def size() -> int:  # looked up once per operation, on first use
        if "mtu" not in sizes:
            sizes["mtu"] = mtu(plan, local)
        return sizes["mtu"]

    alias = names.link_alias(tag, plan.network_id)

    def bridge(p: OverlayPlan) -> None:
        with netns.netlink(path(p)) as ipr:
            br = links.create_bridge(ipr, BRIDGE, alias, names.mac_from_id(p.network_id), mtu=size())
            if p.gateway_cidr:
                addrs.add(ipr, br, p.gateway_cidr)

    def vxlan(p: OverlayPlan) -> None:
        assert p.vni is not None, "an overlay network without a VNI"
        with netns.host() as host:
            links.create_vxlan(host, p.vxlan, alias, p.vni, local, mtu=size())

    def unvxlan(p: OverlayPlan) -> None:  # only while it is still out here: once moved in it goes with the namespace
        with netns.host() as host:
            links.delete(host, p.vxlan)

    def move(p: OverlayPlan) -> None:
        with netns.host() as host:
            index = links.lookup(host, p.vxlan)
            if index is None:
                raise KernelError("move vxlan", p.vxlan, "not found in the engine's namespace")
            links.move(host, index, path(p))

    def attach(p: OverlayPlan) -> None:
        with netns.netlink(path(p)) as ipr:
            index, br = links.lookup(ipr, p.vxlan), links.lookup(ipr, BRIDGE)
            if index is None or br is None:
                raise KernelError("create vxlan", p.vxlan, "not found in the overlay namespace after the move")
            links.rename(ipr, index, VXLAN)
            links.set_master(ipr, index, br)
            links.set_up(ipr, index)

    return (
        Step("overlay.netns", lambda p: netns.create(p.netns), destroy),
        Step("overlay.bridge", bridge),  # no undo: it goes with the namespace, as everything below
        Step("overlay.vxlan", vxlan, unvxlan),
        Step("overlay.vxlan-move", move),
        Step("overlay.vxlan-attach", attach),
        Step("overlay.peers", lambda p: sync_peers(p, wanted())),
    )


def destroy(plan: OverlayPlan) -> None:
    """The namespace and everything in it (the VXLAN device goes with it)."""
    netns.delete(path(plan))


def port_steps(plan: OverlayPlan, tag: str, local: str, endpoint: Any, sandbox_netns: str | None, teardown: bool = False) -> tuple[Step, ...]:
    """A container's veth pair: one end on br0 here, the other made in the container as
    ``endpoint.ifname``. On ``teardown`` the kernel destroys it with the container's netns."""
    veth = names.veth_name(endpoint.id)

    def add(p: OverlayPlan) -> None:
        with netns.netlink(path(p)) as ipr:
            br = links.lookup(ipr, BRIDGE)
            if br is None:
                raise KernelError("join", f"{BRIDGE} in {p.netns}", "bridge device is missing")
            links.create_veth(
                ipr, veth, names.link_alias(tag, endpoint.id), peer_name=endpoint.ifname, peer_netns=sandbox_netns,
                peer_mac=endpoint.mac, mtu=mtu(p, local), master=br,
            )

    def remove(p: OverlayPlan) -> None:
        with netns.netlink(path(p)) as ipr:
            links.delete(ipr, veth)

    def no_ipv6(p: OverlayPlan) -> None:
        with netns.entered(path(p)):  # no carrier yet: it never gets an IPv6 address to flood br0 with
            sysctl.disable_ipv6(veth)

    return (
        Step("overlay.port", add, None if teardown else remove),
        Step("overlay.port-ipv6", no_ipv6),  # no undo: goes with the veth
    )


def other_ports(plan: OverlayPlan, endpoint_id: str) -> set[str]:
    """The names of the container ports on br0 other than this endpoint's (some may be
    veths of containers already gone, still waiting for the kernel)."""
    veth = names.veth_name(endpoint_id)
    with netns.netlink(path(plan)) as ipr:
        br = links.lookup(ipr, BRIDGE)
        return {lk.name for lk in links.ports(ipr, br) if lk.name not in (VXLAN, veth)} if br is not None else set()


def _vxlan(ipr: Any) -> int:
    index = links.lookup(ipr, VXLAN)
    if index is None:
        raise KernelError("program peer", VXLAN, "the VXLAN device is missing")
    return index


def add_peer(plan: OverlayPlan, ip: str, mac: str, vtep: str) -> None:
    with netns.netlink(path(plan)) as ipr:
        neigh.add_peer(ipr, _vxlan(ipr), ip, mac, vtep)


def delete_peer(plan: OverlayPlan, ip: str, mac: str, vtep: str) -> None:
    with netns.netlink(path(plan)) as ipr:
        neigh.delete_peer(ipr, _vxlan(ipr), ip, mac, vtep)


def sync_peers(plan: OverlayPlan, wanted: set[tuple[str, str, str]]) -> None:
    """Make the static entries exactly ``wanted`` (ip, mac, vtep): stale ones go, missing ones come."""
    with netns.netlink(path(plan)) as ipr:
        vx = _vxlan(ipr)
        have = set(neigh.peers(ipr, vx))
        for ip, mac, vtep in sorted(have - wanted):
            neigh.delete_peer(ipr, vx, ip, mac, vtep)
        for ip, mac, vtep in sorted(wanted - have):
            neigh.add_peer(ipr, vx, ip, mac, vtep)
