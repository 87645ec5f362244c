"""IPv4 addresses on links."""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from pyroute2 import NetlinkError

from netcore.errors import KernelError
from netcore.osl import netns
from netcore.osl.links import kernel_errors

__all__ = ["add", "delete", "host_prefixes", "owner", "of_link"]


def add(ipr: Any, index: int, cidr: str) -> None:
    iface = ipaddress.IPv4Interface(cidr)
    with kernel_errors("add address", f"{cidr} on {index}"):
        ipr.addr(
            "add",
            index=index,
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
            broadcast=str(iface.network.broadcast_address),
        )


def delete(ipr: Any, index: int, cidr: str) -> None:
    iface = ipaddress.IPv4Interface(cidr)
    try:
        ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code not in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            raise KernelError("delete address", cidr, exc.code) from None


def host_prefixes(ipr: Any = None) -> list[str]:
    """Every IPv4 prefix in use on this namespace: routes (but the default) and addresses.

    The default IPAM skips pools overlapping any of them, so a new network never
    shadows a LAN or VPN the host already reaches. Without ``ipr``: the engine's own
    namespace, through its warm socket.
    """
    if ipr is None:
        with netns.host() as host:
            return host_prefixes(host)
    out: list[str] = []
    for msg in ipr.get_routes(family=2, table=254):
        dst, plen = msg.get("RTA_DST"), msg["dst_len"]
        if dst and plen > 0:
            out.append(f"{dst}/{plen}")
    for msg in ipr.get_addr(family=2):
        address = msg.get("IFA_ADDRESS")
        if address and not address.startswith("127."):
            out.append(str(ipaddress.IPv4Interface(f"{address}/{msg['prefixlen']}").network))
    return out


def owner(address: str, ipr: Any = None) -> str | None:
    """The name of the link in the engine's namespace that holds ``address``, or None."""
    if ipr is None:
        with netns.host() as host:
            return owner(address, host)
    for msg in ipr.get_addr(family=2, address=address):
        if msg.get("IFA_ADDRESS") == address or msg.get("IFA_LOCAL") == address:
            link = ipr.get_links(msg["index"])
            return link[0].get_attr("IFLA_IFNAME") if link else str(msg["index"])
    return None


def of_link(name: str, ipr: Any = None) -> list[str]:
    """The IPv4 addresses on link ``name`` (the engine's namespace without ``ipr``); [] if no such link."""
    if ipr is None:
        with netns.host() as host:
            return of_link(name, host)
    found = ipr.link_lookup(ifname=name)
    return [m.get_attr("IFA_ADDRESS") for m in ipr.get_addr(family=2, index=found[0])] if found else []
