"""The build context: the CLI packs a directory as a tar (minus ``.dockerignore``), the engine unpacks it.

``.dockerignore`` follows Docker's rules (moby/patternmatcher): one pattern a line, ``#``
comments, patterns cleaned and relative to the context root (a leading ``/`` is
dropped), ``*``/``?``/``[...]`` within one path element, ``**`` across any number of
them, ``!`` re-includes, the last matching line wins, and a pattern that matches a
directory excludes everything under it. The Dockerfile and ``.dockerignore`` are sent
even when excluded, as Docker's CLI does (the engine needs the one, and the other is
harmless). Written here because the only maintained Python implementation of these rules
ships inside the Docker SDK, whose import alone would cost the CLI more than this module.

This module is imported by the CLI: the standard library only.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from typing import BinaryIO

__all__ = ["Ignore", "read_ignore", "pack", "pack_for_build", "unpack", "ContextError"]


class ContextError(ValueError):
    """The context cannot be packed or unpacked: one line for the user."""


class Ignore:
    """Docker's ``.dockerignore`` matcher over context-relative paths (``a/b/c``)."""

    def __init__(self, patterns: list[str]) -> None:
        self.rules: list[tuple[bool, re.Pattern[str], str]] = []  # (exclusion, regex, cleaned pattern)
        for raw in patterns:
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            exclusion = text.startswith("!")
            if exclusion:
                text = text[1:].strip()
            text = posixpath.normpath(text).lstrip("/")
            if text in ("", "."):
                continue
            self.rules.append((exclusion, _compile(text), text))
        self.has_exclusions = any(ex for ex, _, _ in self.rules)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative, ``/``-separated) is left out: the last rule that
        matches it or one of its parent directories decides."""
        parents = _parents(path)
        result = False
        for exclusion, rx, _ in self.rules:
            if any(rx.match(p) for p in parents):
                result = not exclusion
        return result

    def may_reinclude_under(self, directory: str) -> bool:
        """Whether an exclusion rule could re-include something below an excluded ``directory``."""
        prefix = directory + "/"
        return any(ex and (p.startswith(prefix) or "*" in p or "?" in p or "[" in p) for ex, _, p in self.rules)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _compile(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match syntax plus ``**``, as one anchored regex."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # "**/" matches zero or more directories
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ContextError(f"syntax error in .dockerignore pattern {pattern!r}")
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "!" + body[1:]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)).replace("\\-", "-") + "]")
            i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def read_ignore(context_dir: str) -> Ignore:
    try:
        with open(os.path.join(context_dir, ".dockerignore"), encoding="utf-8") as f:
            return Ignore(f.read().splitlines())
    except FileNotFoundError:
        return Ignore([])


def pack(context_dir: str, dockerfile: str, dockerfile_text: bytes | None = None) -> bytes:
    """The context as an uncompressed tar. ``dockerfile`` is its path inside the context;
    ``dockerfile_text``: a Dockerfile from outside the context, added under that path."""
    ignore = read_ignore(context_dir)
    keep = {dockerfile, ".dockerignore"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in _walk(context_dir, ignore, keep):
            tar.add(os.path.join(context_dir, rel), arcname=rel, recursive=False)
        if dockerfile_text is not None:
            info = tarfile.TarInfo(dockerfile)
            info.size, info.mode = len(dockerfile_text), 0o644
            tar.addfile(info, io.BytesIO(dockerfile_text))
    return buf.getvalue()


def pack_for_build(context_dir: str, dockerfile_path: str) -> tuple[bytes, str]:
    """The context tar and the Dockerfile's name in it: its path inside the context, or, for
    a Dockerfile from elsewhere, a name of its own under which it is added (as Docker's CLI does)."""
    real = os.path.realpath(dockerfile_path)
    if real.startswith(context_dir + "/"):
        name = os.path.relpath(real, context_dir)
        return pack(context_dir, name), name
    name = f".dockerfile.{os.urandom(10).hex()}"
    with open(real, "rb") as f:
        text = f.read()
    return pack(context_dir, name, text), name


def _walk(root: str, ignore: Ignore, keep: set[str]) -> list[str]:
    out: list[str] = []

    def visit(rel_dir: str) -> None:
        try:
            entries = sorted(os.scandir(os.path.join(root, rel_dir) if rel_dir else root), key=lambda e: e.name)
        except PermissionError as exc:
            raise ContextError(f"error checking context: can't stat '{exc.filename}'") from None
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if ignore.rules and ignore.excluded(rel) and rel not in keep:
                if is_dir and ignore.may_reinclude_under(rel):
                    visit(rel)  # the directory itself stays out; re-included files bring their parents
                continue
            out.append(rel)
            if is_dir:
                visit(rel)

    visit("")
    return out


def unpack(data: bytes | BinaryIO, dest: str) -> None:
    """Extract a context tar (bytes, or a stream read as it arrives) into ``dest``; members
    that would land outside it are refused."""

    def safe(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        checked = tarfile.tar_filter(member, path)  # refuses absolute and ../ paths and links out
        return checked.replace(mode=member.mode, deep=False) if member.mode is not None else checked

    try:
        src = io.BytesIO(data) if isinstance(data, bytes) else data
        with tarfile.open(fileobj=src, mode="r|*") as tar:
            tar.extractall(dest, numeric_owner=True, filter=safe)
    except (tarfile.TarError, OSError) as exc:
        raise ContextError(f"the build context is not a valid tar archive: {exc}") from None
