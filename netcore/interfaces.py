"""The core's part of a join: name, address and route the interface inside the sandbox.

Drivers make the link (in the host, or directly in the sandbox); the core does the
rest the same way for every driver, local or remote.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netcore.errors import KernelError
from netcore.models import Endpoint, JoinInfo, Sandbox
from netcore.osl import addrs, links, netns, routes, sysctl

__all__ = ["configure", "set_default_route"]


def configure(sandbox: Sandbox, endpoint: Endpoint, info: JoinInfo) -> None:
    """Bring ``endpoint.ifname`` up in the sandbox with its address and static routes.

    The default route is the controller's choice among the sandbox's endpoints
    (``set_default_route``)."""
    if sandbox.netns_path is None or not (info.created_in_sandbox or info.src_ifname):
        return
    if info.src_ifname and not info.created_in_sandbox:
        with netns.host() as hipr:
            index = links.lookup(hipr, info.src_ifname)
            if index is None:
                raise KernelError("join", info.src_ifname, "the driver's interface does not exist")
            with links.kernel_errors("move link", f"{info.src_ifname} into {sandbox.netns_path}"):
                hipr.link("set", index=index, net_ns_fd=sandbox.netns_path)
    with netns.netlink(sandbox.netns_path) as ipr:
        name = info.src_ifname if info.src_ifname and not info.created_in_sandbox else endpoint.ifname
        index = links.lookup(ipr, name)
        if index is None:
            raise KernelError("join", f"{name} in {sandbox.netns_path}", "interface not found in the sandbox")
        if name != endpoint.ifname:
            links.rename(ipr, index, endpoint.ifname)
        with netns.entered(sandbox.netns_path):  # before it is up: it never gets an IPv6 address
            sysctl.disable_ipv6(endpoint.ifname)
        if endpoint.address:
            addrs.add(ipr, index, endpoint.address)
        links.set_up(ipr, index)
        for route in info.static_routes:
            # a route without a next hop is directly connected: link scope, so it can serve as one
            routes.add(ipr, route.destination, gateway=route.next_hop, oif=None if route.next_hop else index, scope=None if route.next_hop else "link")


def _add_default(ipr: Any, gateway: str, endpoint: Endpoint) -> None:
    if endpoint.address and ipaddress.ip_address(gateway) not in ipaddress.ip_interface(endpoint.address).network:
        # a gateway outside the subnet (e.g. 169.254.1.1) needs a link route first
        routes.add(ipr, f"{gateway}/32", oif=links.lookup(ipr, endpoint.ifname), scope="link", replace=True)
    routes.add(ipr, "default", gateway=gateway, replace=True)


def set_default_route(sandbox: Sandbox, endpoint: Endpoint) -> None:
    """Point the sandbox's default route at ``endpoint.gateway``, replacing any other."""
    if sandbox.netns_path is None or not endpoint.gateway:
        return
    with netns.netlink(sandbox.netns_path) as ipr:
        _add_default(ipr, endpoint.gateway, endpoint)
