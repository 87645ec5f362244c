"""One overlay network's namespace on this host: br0 with the gateway, vxlan0, the containers' ports.

It exists while at least one local container is on the network (Docker's overlay
sandbox). The VXLAN device is made in the engine's own namespace, where the
underlay is, then moved in: its UDP socket stays behind, so encapsulated packets
are routed by the host. Learning is off and nothing floods: remote containers are
static FDB (MAC -> remote VTEP) and neighbour (IP -> MAC) entries, and the device's
proxy answers ARP for them locally.
"""

from __future__ import annotations

from typing import Any

from netcore import KernelError, names
from netcore.osl import addrs, links, neigh, netns, sysctl

from drivers.overlay.plan import ENCAP, OverlayPlan

__all__ = ["path", "exists", "ensure", "destroy", "add_port", "remove_port", "sync_peers", "add_peer", "delete_peer", "underlay_mtu"]

BRIDGE, VXLAN = "br0", "vxlan0"


def path(plan: OverlayPlan) -> str:
    return f"{netns.NETNS_DIR}/{plan.netns}"


def exists(plan: OverlayPlan) -> bool:
    return netns.exists(path(plan))


def underlay_mtu(local: str) -> int:
    """MTU of the host's interface that holds the advertised address (1500 if none does)."""
    with netns.host() as ipr:
        for msg in ipr.get_addr(family=2, address=local):
            link = links.get(ipr, msg["index"])
            if link is not None:
                return link.mtu
    return 1500


def mtu(plan: OverlayPlan, local: str) -> int:
    return plan.mtu or underlay_mtu(local) - ENCAP


def ensure(plan: OverlayPlan, tag: str, local: str) -> bool:
    """Make the namespace with br0 and vxlan0 unless it is there; True if it was made now."""
    if exists(plan):
        return False
    assert plan.vni is not None, "an overlay network without a VNI"
    size = mtu(plan, local)
    alias = names.link_alias(tag, plan.network_id)
    p = netns.create(plan.netns)
    try:
        with netns.netlink(p) as ipr:
            br = links.create_bridge(ipr, BRIDGE, alias, names.mac_from_id(plan.network_id), mtu=size)
            if plan.gateway_cidr:
                addrs.add(ipr, br, plan.gateway_cidr)
            with netns.host() as host:
                vx = links.create_vxlan(host, plan.vxlan, alias, plan.vni, local, mtu=size)
                try:
                    links.move(host, vx, p)
                except BaseException:
                    links.delete(host, plan.vxlan)
                    raise
            index = links.lookup(ipr, plan.vxlan)
            if index is None:
                raise KernelError("create vxlan", plan.vxlan, "not found in the overlay namespace after the move")
            links.rename(ipr, index, VXLAN)
            links.set_master(ipr, index, br)
            links.set_up(ipr, index)
    except BaseException:
        netns.delete(p)
        raise
    return True


def destroy(plan: OverlayPlan) -> None:
    """The namespace and everything in it (the VXLAN device goes with it)."""
    netns.delete(path(plan))


def add_port(plan: OverlayPlan, tag: str, local: str, endpoint: Any, sandbox_netns: str) -> None:
    """A veth pair: one end on br0 here, the other made in the container as ``endpoint.ifname``."""
    with netns.netlink(path(plan)) as ipr:
        br = links.lookup(ipr, BRIDGE)
        if br is None:
            raise KernelError("join", f"{BRIDGE} in {plan.netns}", "bridge device is missing")
        veth = names.veth_name(endpoint.id)
        links.create_veth(
            ipr,
            veth,
            names.link_alias(tag, endpoint.id),
            peer_name=endpoint.ifname,
            peer_netns=sandbox_netns,
            peer_mac=endpoint.mac,
            mtu=mtu(plan, local),
            master=br,
        )
        try:
            with netns.entered(path(plan)):  # no carrier yet: it never gets an IPv6 address to flood br0 with
                sysctl.disable_ipv6(veth)
        except BaseException:
            links.delete(ipr, veth)
            raise


def remove_port(plan: OverlayPlan, endpoint_id: str, delete: bool = True) -> set[str]:
    """Delete an endpoint's veth (``delete`` False: leave it to the kernel, which destroys it
    with the container's netns); returns the names of the other container ports on br0
    (some may be such veths still waiting for the kernel)."""
    veth = names.veth_name(endpoint_id)
    with netns.netlink(path(plan)) as ipr:
        if delete:
            links.delete(ipr, veth)
        br = links.lookup(ipr, BRIDGE)
        return {m.get("ifname") for m in ipr.get_links() if m.get("master") == br and m.get("ifname") not in (VXLAN, veth)}


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
