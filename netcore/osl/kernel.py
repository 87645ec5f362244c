"""The OS layer as the controller and ``netcore.interfaces`` use it, behind one object.

The controller receives a kernel at construction: ``HostKernel`` (this module) does
the work through the osl modules on the real kernel; ``netcore.osl.fake.FakeKernel``
records the same calls and keeps just enough state for unit tests without root.
Namespaces are named by path; ``None`` is the engine's own (host) namespace.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from netcore.errors import KernelError
from netcore.osl import addrs, links, netns, routes, sysctl

__all__ = ["HostKernel", "Kernel"]


class Kernel(Protocol):
    netns_dir: str

    def session(self) -> AbstractContextManager[None]:
        """Share per-namespace resources (netlink sockets) for the body's calls."""

    def create_netns(self, name: str) -> str:
        """A new named netns with ``lo`` up; returns its path."""

    def delete_netns(self, path: str) -> None: ...

    def netns_exists(self, path: str) -> bool: ...

    def netns_names(self) -> list[str]: ...

    def owned_links(self, alias_prefix: str) -> list[tuple[str, str]]:
        """``(name, alias)`` of host links whose alias starts with ``alias_prefix``."""

    def delete_link(self, name: str) -> bool:
        """Delete a host link; False if it was gone."""

    def host_prefixes(self) -> list[str]:
        """IPv4 prefixes the host already reaches (routes and addresses): IPAM avoids them."""

    def address_owner(self, address: str) -> str | None:
        """The name of the host link holding ``address``, or None."""

    def move_link(self, name: str, netns_path: str) -> None:
        """Move a host link into a namespace; ``KernelError`` if there is no such link."""

    def link_index(self, netns_path: str | None, name: str) -> int | None: ...

    def rename_link(self, netns_path: str | None, index: int, name: str) -> None: ...

    def set_up(self, netns_path: str | None, index: int) -> None: ...

    def disable_ipv6(self, netns_path: str | None, ifname: str) -> None: ...

    def add_address(self, netns_path: str | None, index: int, cidr: str) -> None: ...

    def add_route(
        self,
        netns_path: str | None,
        destination: str,
        gateway: str | None = None,
        oif: int | None = None,
        scope: str | None = None,
        replace: bool = False,
    ) -> None: ...


class HostKernel:
    """The real kernel, through pyroute2 and the osl modules. Stateless: one instance serves all."""

    netns_dir = netns.NETNS_DIR

    def session(self) -> AbstractContextManager[None]:
        return netns.session()

    def create_netns(self, name: str) -> str:
        return netns.create(name)

    def delete_netns(self, path: str) -> None:
        netns.delete(path)

    def netns_exists(self, path: str) -> bool:
        return netns.exists(path)

    def netns_names(self) -> list[str]:
        return netns.list_names()

    def owned_links(self, alias_prefix: str) -> list[tuple[str, str]]:
        with netns.host() as ipr:
            return [(lk.name, lk.alias or "") for lk in links.owned(ipr, alias_prefix)]

    def delete_link(self, name: str) -> bool:
        with netns.host() as ipr:
            return links.delete(ipr, name)

    def host_prefixes(self) -> list[str]:
        return addrs.host_prefixes()

    def address_owner(self, address: str) -> str | None:
        return addrs.owner(address)

    def move_link(self, name: str, netns_path: str) -> None:
        with netns.host() as ipr:
            index = links.lookup(ipr, name)
            if index is None:
                raise KernelError("join", name, "the driver's interface does not exist")
            links.move(ipr, index, netns_path)

    def link_index(self, netns_path: str | None, name: str) -> int | None:
        if netns_path is None:
            with netns.host() as ipr:
                return links.lookup(ipr, name)
        with netns.netlink(netns_path) as ipr:
            return links.lookup(ipr, name)

    def rename_link(self, netns_path: str | None, index: int, name: str) -> None:
        with self._ipr(netns_path) as ipr:
            links.rename(ipr, index, name)

    def set_up(self, netns_path: str | None, index: int) -> None:
        with self._ipr(netns_path) as ipr:
            links.set_up(ipr, index)

    def disable_ipv6(self, netns_path: str | None, ifname: str) -> None:
        with netns.entered(netns_path):
            sysctl.disable_ipv6(ifname)

    def add_address(self, netns_path: str | None, index: int, cidr: str) -> None:
        with self._ipr(netns_path) as ipr:
            addrs.add(ipr, index, cidr)

    def add_route(
        self,
        netns_path: str | None,
        destination: str,
        gateway: str | None = None,
        oif: int | None = None,
        scope: str | None = None,
        replace: bool = False,
    ) -> None:
        with self._ipr(netns_path) as ipr:
            routes.add(ipr, destination, gateway=gateway, oif=oif, scope=scope, replace=replace)

    @staticmethod
    def _ipr(netns_path: str | None) -> AbstractContextManager:
        return netns.host() if netns_path is None else netns.netlink(netns_path)
