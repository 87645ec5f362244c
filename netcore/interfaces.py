"""The core's part of a join: name, address and route the interface inside the sandbox.

Drivers make the link (in the host, or directly in the sandbox); the core does the
rest the same way for every driver, local or remote.
"""

from __future__ import annotations

import ipaddress

from netcore.errors import KernelError
from netcore.models import Endpoint, JoinInfo, Sandbox
from netcore.osl.kernel import Kernel

__all__ = ["configure", "set_default_route"]


def configure(kernel: Kernel, sandbox: Sandbox, endpoint: Endpoint, info: JoinInfo) -> None:
    """Bring ``endpoint.ifname`` up in the sandbox with its address and static routes.

    The default route is the controller's choice among the sandbox's endpoints
    (``set_default_route``)."""
    ns = sandbox.netns_path
    if ns is None or not (info.created_in_sandbox or info.src_ifname):
        return
    if info.src_ifname and not info.created_in_sandbox:
        kernel.move_link(info.src_ifname, ns)
    name = info.src_ifname if info.src_ifname and not info.created_in_sandbox else endpoint.ifname
    index = kernel.link_index(ns, name)
    if index is None:
        raise KernelError("join", f"{name} in {ns}", "interface not found in the sandbox")
    if name != endpoint.ifname:
        kernel.rename_link(ns, index, endpoint.ifname)
    kernel.disable_ipv6(ns, endpoint.ifname)  # before it is up: it never gets an IPv6 address
    if endpoint.address:
        kernel.add_address(ns, index, endpoint.address)
    kernel.set_up(ns, index)
    for route in info.static_routes:
        # a route without a next hop is directly connected: link scope, so it can serve as one
        kernel.add_route(ns, route.destination, gateway=route.next_hop, oif=None if route.next_hop else index, scope=None if route.next_hop else "link")


def set_default_route(kernel: Kernel, sandbox: Sandbox, endpoint: Endpoint) -> None:
    """Point the sandbox's default route at ``endpoint.gateway``, replacing any other."""
    ns, gateway = sandbox.netns_path, endpoint.gateway
    if ns is None or not gateway:
        return
    if endpoint.address and ipaddress.ip_address(gateway) not in ipaddress.ip_interface(endpoint.address).network:
        # a gateway outside the subnet (e.g. 169.254.1.1) needs a link route first
        kernel.add_route(ns, f"{gateway}/32", oif=kernel.link_index(ns, endpoint.ifname), scope="link", replace=True)
    kernel.add_route(ns, "default", gateway=gateway, replace=True)
