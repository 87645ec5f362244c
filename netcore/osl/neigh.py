"""Static forwarding and neighbour entries: where a remote MAC lives, which MAC an IP has.

On a VXLAN device, ``fdb`` sends frames for a MAC to a remote tunnel endpoint and
``neigh`` lets the device's proxy answer ARP for the IP locally, so nothing is
flooded or learned. Entries are permanent; ``replace`` makes adding idempotent.
"""

from __future__ import annotations

import errno
from typing import Any

from pyroute2 import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from netcore.errors import KernelError
from netcore.osl.links import kernel_errors

__all__ = ["add_peer", "delete_peer", "peers"]

PERMANENT = ndmsg.states["permanent"]
SELF = ndmsg.flags["self"]


def add_peer(ipr: Any, index: int, ip: str, mac: str, vtep: str) -> None:
    """``bridge fdb replace MAC dev DEV dst VTEP self permanent`` + ``ip neigh replace IP lladdr MAC``."""
    with kernel_errors("add fdb entry", f"{mac} via {vtep}"):
        ipr.fdb("replace", ifindex=index, lladdr=mac, dst=vtep, state=PERMANENT, flags=SELF)
    with kernel_errors("add neighbour", f"{ip} lladdr {mac}"):
        ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=index, state=PERMANENT)


def delete_peer(ipr: Any, index: int, ip: str, mac: str, vtep: str) -> None:
    """FDB entry first, then the neighbour (Docker's order); "already gone" is fine."""
    for call in (
        lambda: ipr.fdb("del", ifindex=index, lladdr=mac, dst=vtep, state=PERMANENT, flags=SELF),
        lambda: ipr.neigh("del", dst=ip, lladdr=mac, ifindex=index),
    ):
        try:
            call()
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EINVAL):
                raise KernelError("delete peer", f"{ip} {mac} via {vtep}", exc.code) from None


def peers(ipr: Any, index: int) -> list[tuple[str, str, str]]:
    """The static peers programmed on a device: (ip, mac, vtep) for each neighbour whose MAC has an FDB entry."""
    vteps = {m.get("NDA_LLADDR"): m.get("NDA_DST") for m in ipr.fdb("dump", ifindex=index) if m.get("NDA_DST")}
    out = []
    for m in ipr.get_neighbours(ifindex=index):
        mac = m.get("NDA_LLADDR")
        if mac in vteps and m["state"] & PERMANENT:
            out.append((m.get("NDA_DST"), mac, vteps[mac]))
    return sorted(out)
