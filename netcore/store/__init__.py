"""Where netcore keeps its records: one protocol, a backend per scope.

Records are JSON objects filed by ``kind`` (``network``, ``endpoint``, ``container``,
``address`` ...) and ``id``, optionally with a unique ``name`` per kind and a
``parent`` id to list by. Local scope uses SQLite; a cluster store (etcd) implements
the same protocol.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["Store", "open_store"]


class Store(Protocol):
    def get(self, kind: str, id: str) -> dict[str, Any] | None: ...

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The record of ``kind`` whose unique name is ``name``."""

    def list(self, kind: str, parent: str | None = None) -> list[dict[str, Any]]: ...

    def count(self, kind: str, parent: str | None = None) -> int: ...

    def put(
        self,
        kind: str,
        id: str,
        data: dict[str, Any],
        name: str | None = None,
        parent: str | None = None,
        create: bool = False,
    ) -> None:
        """Write a record. ``create=True`` raises ``AlreadyExists`` if the id or name is taken."""

    def delete(self, kind: str, id: str) -> bool:
        """Remove a record; True if it existed."""

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    def close(self) -> None: ...


def open_store(root: str) -> Store:
    from netcore.store.sqlite import SqliteStore

    return SqliteStore(root)
