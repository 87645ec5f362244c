"""A firewall that does nothing and remembers what it was asked (netavark's ``fwnone``).

It has the methods of ``nft.Firewall``, so a controller or a driver built with it runs
its whole logic without root or nftables; tests read ``calls`` (every method called,
in order, with its arguments) and ``published`` (the DNAT entries a real table would
hold now) to check what the logic asked of the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from netcore.models import PortBinding

__all__ = ["NoFirewall"]


class _NoWatch:
    def stop(self) -> None:
        """Nothing runs."""


class NoFirewall:
    family = "inet"

    def __init__(self, table: str = "netcore-none", netns_path: str | None = None) -> None:
        self.table = table
        self.netns_path = netns_path
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.published: dict[PortBinding, str] = {}  # binding -> container address
        self._exists = False

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def apply(self, commands: list[dict[str, Any]]) -> None:
        self._record("apply", list(commands))

    def exists(self) -> bool:
        return self._exists

    def list(self) -> list[dict[str, Any]]:
        return []

    def ensure(self) -> None:
        self._record("ensure")
        self._exists = True

    def coexist(self) -> None:
        self._record("coexist")

    def uncoexist(self) -> None:
        self._record("uncoexist")

    def added_sets(self) -> list[dict[str, Any]]:
        return []

    def loopback_guard(self) -> list[dict[str, Any]]:
        return []

    def base_commands(self) -> list[dict[str, Any]]:
        return []

    def publish(self, container_ip: str, bindings: Iterable[PortBinding]) -> None:
        bindings = list(bindings)
        self._record("publish", container_ip, bindings)
        self.published.update((b, container_ip) for b in bindings)

    def unpublish(self, bindings: Iterable[PortBinding]) -> None:
        bindings = list(bindings)
        self._record("unpublish", bindings)
        for b in bindings:
            self.published.pop(b, None)

    def prune_ports(self, keep: Iterable[tuple[str, PortBinding]]) -> int:
        wanted = {b: ip for ip, b in keep}
        stale = [b for b, ip in self.published.items() if wanted.get(b) != ip]
        for b in stale:
            del self.published[b]
        self._record("prune_ports", len(stale))
        return len(stale)

    def watch(self, on_gone: Callable[[], None]) -> _NoWatch:
        """No table, so nobody can delete it: nothing to watch."""
        return _NoWatch()

    def delete(self) -> None:
        self._record("delete")
        self._exists = False
        self.published.clear()

    def close(self) -> None:
        self._record("close")
