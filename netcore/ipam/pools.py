"""Default address pools and the choice of a free one."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

__all__ = ["default_pools", "global_pools", "first_free_pool", "overlapping"]

Net = ipaddress.IPv4Network


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
