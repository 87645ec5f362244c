"""Named and anonymous volumes: directories under ``<engine root>/volumes/NAME/_data``.

As Docker's ``local`` driver: a volume is a directory the engine made, bind-mounted
into containers; its metadata (labels, creation time, anonymous or not) sits next to
it in ``volume.json``. A volume a container refers to cannot be removed; anonymous
volumes (``-v /path`` and an image's VOLUME entries, named by 64 hex digits) go with
their container on ``rm -v`` and with ``volume prune``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from netcore import Conflict, InvalidConfig, NotFound

__all__ = ["Volumes", "ANONYMOUS_LABEL", "valid_name"]

ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker marks anonymous volumes with it
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_ANON_RE = re.compile(r"[0-9a-f]{64}")
Users = Callable[[str], "list[str]"]  # volume name -> ids of the containers that mount it


def valid_name(name: str) -> bool:
    return bool(_NAME_RE.fullmatch(name))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Volumes:
    def __init__(self, root: str, users: Users | None = None) -> None:
        self.dir = os.path.join(root, "volumes")
        os.makedirs(self.dir, exist_ok=True)
        self.users: Users = users or (lambda name: [])
        self.lock = threading.RLock()
        for leftover in os.listdir(self.dir):  # a create or remove cut short by a dead engine
            if leftover.startswith(".tmp-"):
                shutil.rmtree(os.path.join(self.dir, leftover), ignore_errors=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _meta(self, name: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._path(name), "volume.json")) as f:
                return json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"get {name}: no such volume") from None

    def view(self, name: str) -> dict[str, Any]:
        """Docker's ``volume inspect`` shape."""
        meta = self._meta(name)
        return {
            "CreatedAt": meta["created"],
            "Driver": "local",
            "Labels": meta.get("labels") or {},
            "Mountpoint": self._data(name),
            "Name": name,
            "Options": meta.get("options") or {},
            "Scope": "local",
        }

    def _data(self, name: str) -> str:
        return os.path.join(self._path(name), "_data")

    def mountpoint(self, name: str) -> str:
        """The directory a container's mount of ``name`` binds (``ensure`` makes it)."""
        return self._data(name)

    def ensure(self, name: str) -> bool:
        """Make the volume if it does not exist, as ``docker run -v NAME:/path`` does (a
        64-hex-digit name, as the engine gives ``-v /path``: an anonymous one). True if made."""
        with self.lock:
            if self.exists(name):
                return False
            self.create(name, anonymous=bool(_ANON_RE.fullmatch(name)))
            return True

    def exists(self, name: str) -> bool:
        return os.path.exists(os.path.join(self._path(name), "volume.json"))

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, driver: str = "local",
               options: dict[str, str] | None = None, anonymous: bool = False) -> dict[str, Any]:
        """A new volume, or the existing one of that name (Docker's ``volume create`` is idempotent)."""
        if driver not in ("", "local"):
            raise InvalidConfig(f"volume driver {driver!r} is not supported (only local)")
        if options:
            raise InvalidConfig(f"unknown volume option {sorted(options)[0]!r}: the local driver takes none here")
        if name is None or anonymous and not name:
            name, anonymous = secrets.token_hex(32), True
        if not valid_name(name):
            raise InvalidConfig(
                f'create {name}: "{name}" includes invalid characters for a local volume name, only '
                '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
            )
        with self.lock:
            if self.exists(name):
                return self.view(name)
            tmp = tempfile.mkdtemp(dir=self.dir, prefix=".tmp-")
            try:
                os.mkdir(os.path.join(tmp, "_data"), 0o755)
                meta = {"created": _now(), "labels": {**(labels or {}), **({ANONYMOUS_LABEL: ""} if anonymous else {})}}
                with open(os.path.join(tmp, "volume.json"), "w") as f:
                    json.dump(meta, f)
                os.chmod(tmp, 0o701)
                os.rename(tmp, self._path(name))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return self.view(name)

    def populate(self, name: str, layers: Sequence[str], path: str) -> bool:
        """Copy an image's content at ``path`` into the volume if it is empty (Docker's copy-up of
        a new volume mounted over a directory of the image): the layers (lowest first) merged as
        overlayfs would show them, whiteouts and opaque directories applied. True if it copied."""
        data = self._data(name)
        if os.listdir(data):
            return False
        rel = os.path.normpath(path).lstrip("/")
        copied = False
        for layer in layers:
            src = os.path.join(layer, rel)
            if _is_whiteout(src) or (os.path.lexists(src) and not os.path.isdir(src) or os.path.islink(src)):
                _empty(data)  # the path is gone, or no longer a directory, from this layer up
                copied = False
                continue
            if not os.path.isdir(src):
                continue
            if _opaque(src):
                _empty(data)
            _merge(src, data)
            st = os.lstat(src)
            os.chown(data, st.st_uid, st.st_gid)
            os.chmod(data, stat.S_IMODE(st.st_mode))
            copied = True
        return copied

    def remove_anonymous(self, mounts: Sequence[dict[str, Any]]) -> None:
        """Remove the anonymous volumes among a container's mounts (``rm -v``, ``--rm``, a failed
        ``run``); one another container still uses is kept, as Docker does."""
        for m in mounts:
            name = m.get("Name") or ""
            if m.get("Type") != "volume" or not self.exists(name) or not self.anonymous(name):
                continue
            try:
                self.remove(name)
            except Conflict:
                pass

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.view(n) for n in sorted(os.listdir(self.dir)) if not n.startswith(".") and self.exists(n)]

    def anonymous(self, name: str) -> bool:
        return ANONYMOUS_LABEL in (self._meta(name).get("labels") or {})

    def remove(self, name: str, force: bool = False) -> None:
        """Refused while a container refers to it (Docker's message); ``force``: no error if missing."""
        with self.lock:
            if not self.exists(name):
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            self._drop(name)

    def _drop(self, name: str) -> None:
        trash = tempfile.mkdtemp(dir=self.dir, prefix=".tmp-")
        os.rename(self._path(name), os.path.join(trash, name))
        shutil.rmtree(trash, ignore_errors=True)

    def prune(self, all: bool = False, labels: dict[str, str] | None = None) -> tuple[list[str], int]:
        """Remove unused volumes: anonymous ones only unless ``all`` (Docker 23+). (names, bytes freed)."""
        removed, space = [], 0
        with self.lock:
            for view in self.list():
                name = view["Name"]
                if not all and ANONYMOUS_LABEL not in view["Labels"]:
                    continue
                if labels and any(view["Labels"].get(k) != v for k, v in labels.items()):
                    continue
                if self.users(name):
                    continue
                space += _du(self._data(name))
                self._drop(name)
                removed.append(name)
        return removed, space


def _is_whiteout(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _empty(path: str) -> None:
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


def _merge(src: str, dst: str) -> None:
    """One layer's directory over what is in ``dst`` already: whiteouts delete, opaque dirs replace."""
    for entry in os.listdir(src):
        s, d = os.path.join(src, entry), os.path.join(dst, entry)
        if _is_whiteout(s):
            if os.path.isdir(d) and not os.path.islink(d):
                shutil.rmtree(d)
            elif os.path.lexists(d):
                os.unlink(d)
            continue
        if os.path.isdir(s) and not os.path.islink(s):
            if os.path.lexists(d) and (not os.path.isdir(d) or os.path.islink(d)):
                os.unlink(d)
            if os.path.isdir(d) and _opaque(s):
                shutil.rmtree(d)
            if not os.path.isdir(d):
                os.mkdir(d)
                shutil.copystat(s, d, follow_symlinks=False)
                st = os.lstat(s)
                os.chown(d, st.st_uid, st.st_gid)
            _merge(s, d)
            continue
        if os.path.isdir(d) and not os.path.islink(d):
            shutil.rmtree(d)
        elif os.path.lexists(d):
            os.unlink(d)
        subprocess.run(["cp", "-a", "--", s, d], check=True)


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
