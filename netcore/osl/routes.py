"""IPv4 routes."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from pyroute2 import NetlinkError

from netcore.errors import KernelError
from netcore.osl.links import kernel_errors

__all__ = ["Route", "add", "delete", "owned", "UNICAST", "BLACKHOLE"]

UNICAST, BLACKHOLE = 1, 6  # RTN_UNICAST, RTN_BLACKHOLE
MAIN = 254


@dataclass(frozen=True)
class Route:
    dst: str  # CIDR
    type: int  # UNICAST or BLACKHOLE (others are listed as they come)
    gateway: str | None
    oif: int | None
    proto: int


def add(
    ipr: Any,
    dst: str,
    gateway: str | None = None,
    oif: int | None = None,
    scope: str | None = None,
    replace: bool = False,
    proto: int | None = None,
    blackhole: bool = False,
) -> None:
    """``dst`` is a CIDR or ``default``; via ``gateway``, or directly on ``oif``, or a ``blackhole``;
    ``replace`` any route to ``dst``; ``proto`` marks the route as someone's (e.g. a driver's)."""
    spec: dict[str, Any] = {"dst": "0.0.0.0/0" if dst == "default" else dst}
    if gateway:
        spec["gateway"] = gateway
    if oif is not None:
        spec["oif"] = oif
    if scope == "link":
        spec["scope"] = 253
    if proto is not None:
        spec["proto"] = proto
    if blackhole:
        spec["type"] = BLACKHOLE
    with kernel_errors("add route", f"{dst} via {gateway or oif or 'blackhole'}"):
        ipr.route("replace" if replace else "add", **spec)


def delete(
    ipr: Any, dst: str, gateway: str | None = None, proto: int | None = None, type: int | None = None, oif: int | None = None
) -> None:
    """Remove a route to ``dst`` (matching ``gateway``/``proto``/``type``/``oif`` when given); "already gone" is fine."""
    spec: dict[str, Any] = {"dst": "0.0.0.0/0" if dst == "default" else dst, "scope": 255}  # RT_SCOPE_NOWHERE: any scope
    if gateway:
        spec["gateway"] = gateway
    if oif is not None:
        spec["oif"] = oif
    if proto is not None:
        spec["proto"] = proto
    if type is not None:
        spec["type"] = type
    try:
        ipr.route("del", **spec)
    except NetlinkError as exc:
        if exc.code not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            raise KernelError("delete route", dst, exc.code) from None


def owned(ipr: Any, proto: int) -> list[Route]:
    """The main table's IPv4 routes carrying protocol number ``proto``."""
    out = []
    for msg in ipr.get_routes(family=2, table=MAIN):
        if msg["proto"] != proto or (msg.get("RTA_TABLE") or msg["table"]) != MAIN:
            continue
        dst = msg.get("RTA_DST") or "0.0.0.0"
        out.append(Route(f"{dst}/{msg['dst_len']}", msg["type"], msg.get("RTA_GATEWAY"), msg.get("RTA_OIF"), proto))
    return out
