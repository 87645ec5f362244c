"""IPv4 routes."""

from __future__ import annotations

import errno
from typing import Any

from pyroute2 import NetlinkError

from netcore.errors import KernelError
from netcore.osl.links import kernel_errors

__all__ = ["add", "delete"]


def add(
    ipr: Any, dst: str, gateway: str | None = None, oif: int | None = None, scope: str | None = None, replace: bool = False
) -> None:
    """``dst`` is a CIDR or ``default``; via ``gateway``, or directly on ``oif``; ``replace`` any route to ``dst``."""
    spec: dict[str, Any] = {"dst": "0.0.0.0/0" if dst == "default" else dst}
    if gateway:
        spec["gateway"] = gateway
    if oif is not None:
        spec["oif"] = oif
    if scope == "link":
        spec["scope"] = 253
    with kernel_errors("add route", f"{dst} via {gateway or oif}"):
        ipr.route("replace" if replace else "add", **spec)


def delete(ipr: Any, dst: str, gateway: str | None = None) -> None:
    spec: dict[str, Any] = {"dst": "0.0.0.0/0" if dst == "default" else dst}
    if gateway:
        spec["gateway"] = gateway
    try:
        ipr.route("del", **spec)
    except NetlinkError as exc:
        if exc.code not in (errno.ESRCH, errno.ENOENT, errno.ENODEV):
            raise KernelError("delete route", dst, exc.code) from None
