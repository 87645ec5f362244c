"""A recording fake of the OS layer (``netcore.osl.kernel.Kernel``), for tests without root.

It keeps just enough state to answer the lookups the controller and
``netcore.interfaces`` do (namespaces; links with their alias, state and addresses;
routes, per namespace) and records every call in ``calls``, in order, so a test can
check what was asked of the kernel. It refuses what the kernel would refuse in the same
spots (a missing link, a taken name, a route that exists without ``replace``), raising
the same ``KernelError``. A test driver stands in for a real one by making its links
here (``add_link``), as a real driver makes them in the kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from netcore.errors import KernelError

__all__ = ["FakeKernel", "FakeLink", "FakeRoute"]


@dataclass
class FakeLink:
    name: str
    alias: str = ""
    up: bool = False
    addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FakeRoute:
    gateway: str | None = None
    oif: int | None = None
    scope: str | None = None


class FakeKernel:
    netns_dir = "/fake/netns"

    def __init__(self, host_prefixes: list[str] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.links: dict[str | None, dict[int, FakeLink]] = {None: {}}  # netns path (None: host) -> index -> link
        self.routes: dict[str | None, dict[str, FakeRoute]] = {None: {}}  # netns path -> destination -> route
        self.extra_prefixes = list(host_prefixes or [])  # the host's LAN, VPN ...: what IPAM must avoid
        self._index = itertools.count(2)  # 1 is lo

    # ------------------------------------------------------------ test side ---

    def add_link(self, name: str, alias: str = "", netns_path: str | None = None) -> int:
        """Make a link, as a driver's ``create_endpoint`` does in the kernel."""
        self.calls.append(("add_link", (name, alias, netns_path)))
        ns = self._ns(netns_path)
        if any(lk.name == name for lk in ns.values()):
            raise KernelError("create link", name, errno.EEXIST)
        index = next(self._index)
        ns[index] = FakeLink(name, alias)
        return index

    def link(self, netns_path: str | None, name: str) -> FakeLink | None:
        index = self._lookup(netns_path, name)
        return None if index is None else self.links[netns_path][index]

    def called(self, name: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of ``name``, in order."""
        return [args for n, args in self.calls if n == name]

    # ------------------------------------------------------------ Kernel ------

    @contextmanager
    def session(self) -> Iterator[None]:
        yield

    def create_netns(self, name: str) -> str:
        self.calls.append(("create_netns", (name,)))
        path = f"{self.netns_dir}/{name}"
        if path in self.links:
            raise KernelError("create netns", path, errno.EEXIST)
        self.links[path] = {1: FakeLink("lo", up=True)}
        self.routes[path] = {}
        return path

    def delete_netns(self, path: str) -> None:
        self.calls.append(("delete_netns", (path,)))
        self.links.pop(path, None)  # its links go with it, as the kernel reaps them
        self.routes.pop(path, None)

    def netns_exists(self, path: str) -> bool:
        return path in self.links

    def netns_names(self) -> list[str]:
        return sorted(p.rsplit("/", 1)[1] for p in self.links if p is not None)

    def owned_links(self, alias_prefix: str) -> list[tuple[str, str]]:
        return [(lk.name, lk.alias) for lk in self.links[None].values() if lk.alias.startswith(alias_prefix)]

    def delete_link(self, name: str) -> bool:
        self.calls.append(("delete_link", (name,)))
        index = self._lookup(None, name)
        if index is None:
            return False
        del self.links[None][index]
        return True

    def host_prefixes(self) -> list[str]:
        addresses = [str(ipaddress.IPv4Interface(a).network) for lk in self.links[None].values() for a in lk.addresses]
        return [*self.extra_prefixes, *(d for d in self.routes[None] if d != "default"), *addresses]

    def address_owner(self, address: str) -> str | None:
        return next((lk.name for lk in self.links[None].values() if any(a.split("/")[0] == address for a in lk.addresses)), None)

    def move_link(self, name: str, netns_path: str) -> None:
        self.calls.append(("move_link", (name, netns_path)))
        index = self._lookup(None, name)
        if index is None:
            raise KernelError("join", name, "the driver's interface does not exist")
        target = self._ns(netns_path)
        if any(lk.name == name for lk in target.values()):
            raise KernelError("move link", f"{index} into {netns_path}", errno.EEXIST)
        target[index] = self.links[None].pop(index)

    def link_index(self, netns_path: str | None, name: str) -> int | None:
        return self._lookup(netns_path, name)

    def rename_link(self, netns_path: str | None, index: int, name: str) -> None:
        self.calls.append(("rename_link", (netns_path, index, name)))
        ns = self._ns(netns_path)
        if index not in ns:
            raise KernelError("rename link", f"{index} to {name}", errno.ENODEV)
        if any(lk.name == name for i, lk in ns.items() if i != index):
            raise KernelError("rename link", f"{index} to {name}", errno.EEXIST)
        ns[index].name = name

    def set_up(self, netns_path: str | None, index: int) -> None:
        self.calls.append(("set_up", (netns_path, index)))
        self._get(netns_path, index, "set link up").up = True

    def disable_ipv6(self, netns_path: str | None, ifname: str) -> None:
        self.calls.append(("disable_ipv6", (netns_path, ifname)))

    def add_address(self, netns_path: str | None, index: int, cidr: str) -> None:
        self.calls.append(("add_address", (netns_path, index, cidr)))
        link = self._get(netns_path, index, "add address")
        if cidr in link.addresses:
            raise KernelError("add address", cidr, errno.EEXIST)
        link.addresses.append(cidr)

    def add_route(
        self,
        netns_path: str | None,
        destination: str,
        gateway: str | None = None,
        oif: int | None = None,
        scope: str | None = None,
        replace: bool = False,
    ) -> None:
        self.calls.append(("add_route", (netns_path, destination, gateway, oif, scope, replace)))
        table = self.routes.get(netns_path)
        if table is None:
            raise KernelError("add route", f"{destination} in {netns_path}", errno.ENOENT)
        if destination in table and not replace:
            raise KernelError("add route", f"{destination} via {gateway or oif}", errno.EEXIST)
        table[destination] = FakeRoute(gateway, oif, scope)

    # ------------------------------------------------------------ helpers -----

    def _ns(self, netns_path: str | None) -> dict[int, FakeLink]:
        ns = self.links.get(netns_path)
        if ns is None:
            raise KernelError("netns", str(netns_path), errno.ENOENT)
        return ns

    def _lookup(self, netns_path: str | None, name: str) -> int | None:
        return next((i for i, lk in self.links.get(netns_path, {}).items() if lk.name == name), None)

    def _get(self, netns_path: str | None, index: int, op: str) -> FakeLink:
        link = self._ns(netns_path).get(index)
        if link is None:
            raise KernelError(op, str(index), errno.ENODEV)
        return link
