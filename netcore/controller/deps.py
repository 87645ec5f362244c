"""What the controller needs of its collaborators, as Protocols.

The real ones are ``netcore.osl.nft.Firewall`` (and its ``TableWatch``); the unit
tier passes ``netcore.osl.nftnone.NoFirewall``. Only the calls the controller makes
are listed: drivers reach the firewall through ``EngineContext``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from netcore.models import PortBinding

__all__ = ["Deferrer", "EngineFirewall", "TableWatch"]

Deferrer = Callable[[Callable[[], Any]], None]  # takes the driver's part of a disconnect, to run later


class TableWatch(Protocol):
    def stop(self) -> None: ...


class EngineFirewall(Protocol):
    """The engine's nftables table."""

    table: str

    def ensure(self) -> None: ...

    def exists(self) -> bool: ...

    def coexist(self) -> None: ...

    def prune_ports(self, keep: Iterable[tuple[str, PortBinding]]) -> int: ...

    def watch(self, on_gone: Callable[[], None]) -> TableWatch: ...

    def delete(self) -> None: ...

    def close(self) -> None: ...
