"""What a container's root filesystem is made of: the contract between the image store and the launcher.

The image store (``runtime/engine/images.py``) resolves a reference to an ``Image``; the
launcher stacks its layers read-only under a per-container overlayfs upper layer. The
built-in image ``host`` has no layers: its root is the host's own, read-only.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Image", "HOST_IMAGE", "RootView", "ExecError", "find_command", "User", "resolve_user"]


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<hex>" of the image config, or "host"
    layers: tuple[str, ...] = ()  # unpacked layer directories, lowest first, overlayfs whiteout format
    config: Mapping[str, Any] = field(default_factory=dict)  # Entrypoint, Cmd, Env, WorkingDir, ExposedPorts, User, Labels, Volumes
    names: tuple[str, ...] = ()  # repository:tag references that point at it

    @property
    def is_host(self) -> bool:
        return self.id == "host"


HOST_IMAGE = Image("host", names=("host",))


# ------------------------------------------------------------------ the root before it is mounted ----

class RootView:
    """A container's root as overlayfs will show it, read before anything is mounted.

    ``dirs`` are the upper layer then the image's layers, top first (the host image: just
    ``/``). The engine checks the command, the working directory and the user against it
    so that ``run`` fails with Docker's one line instead of a container that dies at once.
    Symlinks resolve inside the root, as they will for the container.
    """

    def __init__(self, dirs: tuple[str, ...]) -> None:
        self.dirs = tuple(d for d in dirs if os.path.isdir(d))  # an upper layer not made yet holds nothing

    def lookup(self, path: str, follow: bool = True) -> str | None:
        """The host path of the top-most entry at container path ``path``, or None."""
        parts = [p for p in path.split("/") if p and p != "."]
        cur: list[str] = []
        visible = list(self.dirs)
        hops = 0
        found = self.dirs[0] if self.dirs else None
        while parts:
            name = parts.pop(0)
            if name == "..":
                cur = cur[:-1]
                visible, found = self._visible(cur)
                continue
            rel = "/".join([*cur, name])
            entry = None
            below: list[str] = []
            for i, d in enumerate(visible):
                p = os.path.join(d, rel)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # whiteout
                    break
                if entry is None:
                    entry = (p, st)
                    if not stat.S_ISDIR(st.st_mode):
                        break
                    below = [d]
                    if _opaque(p):
                        break
                elif stat.S_ISDIR(st.st_mode):
                    below.append(d)
                    if _opaque(p):
                        break
                else:
                    break
            if entry is None:
                return None
            p, st = entry
            if stat.S_ISLNK(st.st_mode) and (follow or parts):
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(p)
                parts = [x for x in target.split("/") if x and x != "."] + parts
                if target.startswith("/"):
                    cur = []
                visible, found = self._visible(cur)
                continue
            cur.append(name)
            visible, found = below, p
        return found

    def _visible(self, cur: list[str]) -> tuple[list[str], str | None]:
        if not cur:
            return list(self.dirs), self.dirs[0] if self.dirs else None
        rel = "/".join(cur)
        out: list[str] = []
        for d in self.dirs:
            p = os.path.join(d, rel)
            if os.path.isdir(p) and not os.path.islink(p):
                out.append(d)
                if _opaque(p):
                    break
        return out, (os.path.join(out[0], rel) if out else None)

    def read_text(self, path: str) -> str | None:
        p = self.lookup(path)
        try:
            with open(p, encoding="utf-8", errors="replace") as f:  # type: ignore[arg-type]
                return f.read()
        except (OSError, TypeError):
            return None

    def is_dir(self, path: str) -> bool:
        p = self.lookup(path)
        return p is not None and os.path.isdir(p)


def _opaque(path: str) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


class ExecError(ValueError):
    """The command cannot run in the container; ``code`` is Docker's exit code for it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def find_command(view: RootView, name: str, path_env: str, workdir: str = "/") -> str:
    """The container path ``name`` runs as, or ExecError with Docker's (runc's) message."""
    if "/" in name:
        target = name if name.startswith("/") else os.path.join(workdir, name)
        p = view.lookup(target)
        if p is None:
            raise ExecError(f'exec: "{name}": stat {name}: no such file or directory', 127)
        if os.path.isdir(p) or not os.access(p, os.X_OK):
            raise ExecError(f'exec: "{name}": permission denied', 126)
        return target
    for d in path_env.split(":"):
        cand = os.path.join(d or ".", name)
        p = view.lookup(cand if cand.startswith("/") else os.path.join(workdir, cand))
        if p is not None and not os.path.isdir(p) and os.access(p, os.X_OK):
            return cand
    raise ExecError(f'exec: "{name}": executable file not found in $PATH', 127)


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


def resolve_user(view: RootView, spec: str) -> User:
    """``-u`` / the image's User: ``name|uid[:group|gid]``, names looked up in the image's
    /etc/passwd and /etc/group as Docker does; a bare uid needs no entry."""
    user, _, group = spec.partition(":")
    if not user:
        raise ValueError(f"invalid user {spec!r}")
    passwd = [line.split(":") for line in (view.read_text("/etc/passwd") or "").splitlines() if line.count(":") >= 6]
    groups = [line.split(":") for line in (view.read_text("/etc/group") or "").splitlines() if line.count(":") >= 3]
    entry = next((p for p in passwd if p[0] == user or (user.isdigit() and p[2] == user)), None)
    if entry is None and not user.isdigit():
        raise ValueError(f"unable to find user {user}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    if group:
        g = next((x for x in groups if x[0] == group or (group.isdigit() and x[2] == group)), None)
        if g is None and not group.isdigit():
            raise ValueError(f"unable to find group {group}: no matching entries in group file")
        gid = int(g[2]) if g else int(group)
    name = entry[0] if entry else None
    extra = tuple(int(g[2]) for g in groups if name and name in g[3].strip().split(",") and g[2].isdigit() and int(g[2]) != gid)
    return User(uid, gid, (gid, *extra), entry[5] if entry and entry[5] else "/")  # runc lists the primary group too
