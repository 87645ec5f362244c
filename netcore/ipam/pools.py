"""Default address pools and the choice of a free one."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

__all__ = ["default_pools", "global_pools", "first_free_pool", "overlapping", "RESERVED", "LINK_LOCAL", "reserved_range"]

Net = ipaddress.IPv4Network

LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")
# Blocks no network may take (RFC 6890): no host can route them as a subnet.
RESERVED: dict[Net, str] = {
    ipaddress.IPv4Network("0.0.0.0/8"): "this host on this network",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    LINK_LOCAL: "link-local",
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("240.0.0.0/4"): "reserved (and broadcast)",
}


def reserved_range(candidate: Net, link_local: bool = False) -> tuple[Net, str] | None:
    """The reserved block ``candidate`` overlaps, with what it is for; link-local is
    allowed when ``link_local`` (a driver that owns 169.254.0.0/16 on purpose)."""
    for block, what in RESERVED.items():
        if candidate.overlaps(block) and not (link_local and block == LINK_LOCAL and candidate.subnet_of(block)):
            return block, what
    return None


def default_pools() -> Iterator[Net]:
    """Docker's local defaults: 172.17.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/16 in /20s."""
    for second in range(17, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    yield from ipaddress.IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def global_pools() -> Iterator[Net]:
    """Docker swarm's defaults for networks that span hosts: 10.0.0.0/8 in /24s."""
    yield from ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=24)


def overlapping(candidate: Net, taken: Iterable[Net]) -> Net | None:
    for net in taken:
        if candidate.overlaps(net):
            return net
    return None


def first_free_pool(taken: Iterable[Net], pools: Iterable[Net] | None = None) -> Net | None:
    """The first default pool overlapping nothing in ``taken`` (other networks, host routes and addresses)."""
    taken = list(taken)
    for candidate in pools if pools is not None else default_pools():
        if overlapping(candidate, taken) is None:
            return candidate
    return None
