"""The kernel side of routed endpoints and blocks, through netcore.osl only.

Per container (Calico's data path): a veth pair, the host end ``ncve-<endpoint id>``
with MAC ee:ee:ee:ee:ee:ee, no address, proxy ARP on (``proxy_delay`` 0),
``route_localnet`` on (localhost -> published port), and a route
``<ip>/32 dev ncve-… scope link proto 78``; the container end ``eth<N>`` with the
/32 and, from the core, ``169.254.1.1 dev eth<N> scope link`` + ``default via 169.254.1.1``.

Proxy ARP answers only for a target routed through *another* interface than the one
the request came in on. So that 169.254.1.1 resolves on hosts without a default route
too, the driver keeps ``169.254.1.1/32 dev lo scope link proto 78`` in the host
namespace while any routed container lives there (nothing is ever sent to it: the host
routes on the destination address).

Per block: ``blackhole <block> proto 78`` on its owner, ``<block> via <owner> proto 78``
on the other hosts (routing=store; BIRD installs ``proto bird`` ones in routing=bgp).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netcore import KernelError, names
from netcore.osl import links, netns, routes, sysctl

from drivers.routed.plan import GATEWAY, HOST_MAC, RTPROT

__all__ = ["add_port", "route_port", "remove_port", "unroute_port", "port_exists", "ensure_gateway_route", "drop_gateway_route_if_unused", "sync_blocks", "route_block", "unroute_block"]


def _host_sysctls(veth: str) -> None:
    sysctl.enable_ip_forward()
    sysctl.write(sysctl.conf_key(veth, "forwarding"), 1)
    sysctl.write(sysctl.conf_key(veth, "proxy_arp"), 1)
    sysctl.write(sysctl.neigh_key(veth, "proxy_delay"), 0)
    sysctl.write(sysctl.conf_key(veth, "route_localnet"), 1)
    sysctl.disable_ipv6(veth)  # IPv4 only, like the container's end


def port_exists(endpoint_id: str) -> bool:
    with netns.host() as ipr:
        return links.lookup(ipr, names.veth_name(endpoint_id)) is not None


def add_port(tag: str, endpoint: Any, sandbox_netns: str, mtu: int | None) -> str:
    """The veth pair of a container (its container end made in the sandbox); returns the host end's name."""
    veth = names.veth_name(endpoint.id)
    with netns.host() as ipr:
        links.create_veth(
            ipr, veth, names.link_alias(tag, endpoint.id), peer_name=endpoint.ifname, peer_netns=sandbox_netns,
            peer_mac=endpoint.mac, mtu=mtu, mac=HOST_MAC,
        )
    return veth


def route_port(endpoint: Any) -> None:
    """The host end's sysctls and the container's /32 route (idempotent)."""
    veth = names.veth_name(endpoint.id)
    with netns.host() as ipr:
        index = links.lookup(ipr, veth)
        if index is None:
            raise KernelError("join", veth, "the veth vanished")
        _host_sysctls(veth)
        routes.add(ipr, f"{endpoint.ip}/32", oif=index, scope="link", proto=RTPROT, replace=True)


def remove_port(endpoint_id: str) -> None:
    with netns.host() as ipr:
        links.delete(ipr, names.veth_name(endpoint_id))  # its /32 route goes with it


def unroute_port(endpoint: Any) -> None:
    """Only the /32 route of a container, whose veth the kernel is about to destroy anyway."""
    with netns.host() as ipr:
        index = links.lookup(ipr, names.veth_name(endpoint.id))
        if index is not None and endpoint.ip:
            routes.delete(ipr, f"{endpoint.ip}/32", oif=index, proto=RTPROT)


def ensure_gateway_route() -> None:
    with netns.host() as ipr:
        lo = links.lookup(ipr, "lo")
        if not any(r.dst == f"{GATEWAY}/32" for r in routes.owned(ipr, RTPROT)):
            routes.add(ipr, f"{GATEWAY}/32", oif=lo, scope="link", proto=RTPROT, replace=True)


def drop_gateway_route_if_unused() -> None:
    """Remove the 169.254.1.1 route once no routed container (of any engine) is left here."""
    with netns.host() as ipr:
        lo = links.lookup(ipr, "lo")
        owned = routes.owned(ipr, RTPROT)
        if not any(r.oif not in (None, lo) and r.dst.endswith("/32") and r.gateway is None and r.type == routes.UNICAST for r in owned):
            if any(r.dst == f"{GATEWAY}/32" for r in owned):
                routes.delete(ipr, f"{GATEWAY}/32", proto=RTPROT)


def route_block(block: str, via: str | None) -> None:
    """``blackhole <block>`` (``via`` None: this host owns it) or ``<block> via <owner>``."""
    with netns.host() as ipr:
        routes.add(ipr, block, gateway=via, blackhole=via is None, proto=RTPROT, replace=True)


def unroute_block(block: str) -> None:
    with netns.host() as ipr:
        for r in routes.owned(ipr, RTPROT):
            if r.dst == block and (r.type == routes.BLACKHOLE or r.gateway):
                routes.delete(ipr, block, proto=RTPROT, type=r.type)


def sync_blocks(scope: list[str], wanted: dict[str, str | None]) -> None:
    """Block routes inside the pools ``scope`` become exactly ``wanted`` (block -> owner, None: blackhole)."""
    pools = [ipaddress.IPv4Network(s) for s in scope]
    with netns.host() as ipr:
        have: dict[str, tuple[int, str | None]] = {}
        for r in routes.owned(ipr, RTPROT):
            if (r.type == routes.BLACKHOLE or r.gateway) and any(ipaddress.IPv4Network(r.dst).subnet_of(p) for p in pools):
                have[r.dst] = (r.type, r.gateway)
        for dst, (typ, gw) in have.items():
            if dst not in wanted:
                routes.delete(ipr, dst, proto=RTPROT, type=typ)
        for dst, via in wanted.items():
            cur = have.get(dst)
            if cur != ((routes.BLACKHOLE, None) if via is None else (routes.UNICAST, via)):
                routes.add(ipr, dst, gateway=via, blackhole=via is None, proto=RTPROT, replace=True)
