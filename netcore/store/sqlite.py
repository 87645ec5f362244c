"""The local store: one SQLite database in WAL mode under the engine's root dir."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from netcore.errors import AlreadyExists

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind   TEXT NOT NULL,
    id     TEXT NOT NULL,
    name   TEXT,
    parent TEXT,
    data   TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS objects_name ON objects (kind, name) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS objects_parent ON objects (kind, parent) WHERE parent IS NOT NULL;
"""


class SqliteStore:
    """Thread-safe: one connection behind a lock; ``transaction()`` nests."""

    def __init__(self, root: str, filename: str = "netcore.db") -> None:
        os.makedirs(root, exist_ok=True)
        self.path = os.path.join(root, filename)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Nested blocks are savepoints: an inner failure undoes only the inner block."""
        with self._lock:
            self._depth += 1
            point = f"sp{self._depth}"
            self._db.execute("BEGIN IMMEDIATE" if self._depth == 1 else f"SAVEPOINT {point}")
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute(f"ROLLBACK TO {point}")
                    self._db.execute(f"RELEASE {point}")
                raise
            else:
                self._db.execute("COMMIT" if self._depth == 1 else f"RELEASE {point}")
            finally:
                self._depth -= 1

    def get(self, kind: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE kind=? AND id=?", (kind, id)).fetchone()
        return json.loads(row[0]) if row else None

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE kind=? AND name=?", (kind, name)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, kind: str, parent: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if parent is None:
                rows = self._db.execute("SELECT data FROM objects WHERE kind=?", (kind,)).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT data FROM objects WHERE kind=? AND parent=?", (kind, parent)
                ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self, kind: str, parent: str | None = None) -> int:
        with self._lock:
            if parent is None:
                row = self._db.execute("SELECT count(*) FROM objects WHERE kind=?", (kind,)).fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM objects WHERE kind=? AND parent=?", (kind, parent)
                ).fetchone()
        return int(row[0])

    def put(
        self,
        kind: str,
        id: str,
        data: dict[str, Any],
        name: str | None = None,
        parent: str | None = None,
        create: bool = False,
    ) -> None:
        # An upsert, never INSERT OR REPLACE: that would silently delete another row holding the name.
        upsert = "" if create else (
            " ON CONFLICT (kind, id) DO UPDATE SET name=excluded.name, parent=excluded.parent, data=excluded.data"
        )
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO objects (kind, id, name, parent, data) VALUES (?, ?, ?, ?, ?)" + upsert,
                    (kind, id, name, parent, json.dumps(data, separators=(",", ":"))),
                )
        except sqlite3.IntegrityError:
            what = f"name {name!r}" if name else f"id {id!r}"
            raise AlreadyExists(f"{kind} {what} already exists") from None

    def delete(self, kind: str, id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM objects WHERE kind=? AND id=?", (kind, id))
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
