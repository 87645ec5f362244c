"""The build cache: which image state a step produced, keyed by what the step depends on.

A step's key hashes its parent state's key, the instruction as it will run (variables
expanded, flags included) and the digest of its inputs (for COPY and ADD: the names,
types, modes and contents of the source files; not their times, as in Docker). Keys
chain, so a changed step changes every key after it: the first miss rebuilds from there
on, and an unchanged rebuild hits on every step.

An entry is a small JSON file under ``<root>/build/cache/``: the layer ids and the image
config after the step. A hit is used only while every layer it names still exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["State", "BuildCache", "step_key", "tree_digest"]


@dataclass(frozen=True)
class State:
    """An image as a build sees it between steps: layers (ids, lowest first) and config."""

    layers: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    key: str = ""  # the cache key of the step that made it ("" for a base image)
    base: str = ""  # the base image's id, "" for scratch
    history: tuple[dict[str, Any], ...] = ()  # the image's history entries, one per step (Docker's shape)
    image: str = ""  # the id of the image a build made of this state, reused by an unchanged rebuild

    @property
    def id(self) -> str:
        """A content id for progress lines: the same layers and config give the same id."""
        doc = json.dumps({"layers": list(self.layers), "config": self.config}, sort_keys=True)
        return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def step_key(parent: State, text: str, inputs: str = "") -> str:
    h = hashlib.sha256()
    for part in (parent.key or parent.id, text, inputs):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def tree_digest(entries: Iterable[tuple[str, str]]) -> str:
    """Digest of files given as (name in the layer, path on disk, "" for a directory made):
    names, types, modes, link targets and contents; directories by their own metadata only."""
    h = hashlib.sha256()
    for name, path in entries:
        if not path:  # a directory the step makes rather than copies
            h.update(f"{name}\0mkdir\0".encode())
            continue
        st = os.lstat(path)
        h.update(f"{name}\0{stat.S_IFMT(st.st_mode):o}\0{stat.S_IMODE(st.st_mode):o}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(path).encode())
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
        h.update(b"\0")
    return h.hexdigest()


class BuildCache:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "build", "cache")
        os.makedirs(self.dir, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, key + ".json")

    def get(self, key: str, layer_exists: Any) -> State | None:
        """The state cached for ``key`` if all its layers still exist (``layer_exists(id)``)."""
        try:
            with open(self._path(key)) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            return None
        layers = tuple(doc.get("layers") or ())
        if not all(layer_exists(layer) for layer in layers):
            return None
        return State(layers, doc.get("config") or {}, key, doc.get("base", ""), tuple(doc.get("history") or ()), doc.get("image", ""))

    def put(self, state: State) -> None:
        doc = {"layers": list(state.layers), "config": state.config, "base": state.base,
               "history": list(state.history), "image": state.image}
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self._path(state.key))
