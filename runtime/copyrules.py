"""``cp``'s rules, shared by the CLI (the host's side) and the engine (the container's side).

``pack`` writes a tar of one path whose single top entry is the path's base name (or, for
``SRC/.``, the directory's content under ``.``); ``unpack`` puts such a tar at a
destination with Docker's rules:

- DEST is a directory: the entry goes inside it (``SRC/.``: the content does);
- DEST is a file: a file source overwrites it, a directory source is refused;
- DEST does not exist: the source is saved as DEST (its parent must exist; a file source
  with DEST ending in ``/`` is refused).

Owners: root, or with ``-a`` the archive's uid/gid. Links in the archive never lead out of
DEST's tree (tarfile's ``tar`` filter).
"""

from __future__ import annotations

import os
import tarfile
from typing import IO

__all__ = ["pack", "unpack", "CopyError"]


class CopyError(Exception):
    """A copy refused: one line."""


def pack(path: str, out: IO[bytes], follow: bool = False, where: str = "") -> None:
    """Tar ``path`` to ``out``; ``follow``: a symlink ``path`` is copied as its target (``-L``).
    ``where``: how errors name the place (``" in container c"``)."""
    contents = path.endswith("/.") or path == "."
    src = os.path.normpath(path)
    if not os.path.lexists(src):
        raise CopyError(f"Could not find the file {path}{where}" if where else f"lstat {path}: no such file or directory")
    if follow and os.path.islink(src):
        src = os.path.realpath(src)
        if not os.path.exists(src):
            raise CopyError(f"Could not find the file {path}{where}" if where else f"stat {path}: no such file or directory")
    name = "." if contents else os.path.basename(os.path.normpath(path)) or "."
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=name, recursive=True)


def unpack(path_or_obj: str | IO[bytes], dest: str, keep_owner: bool = False, raw: bool = False) -> None:
    """Extract a ``pack`` tar (a path, or a seekable file: a spooled copy of a stream) to ``dest``
    (rules above); ``raw``: any tar into the directory ``dest`` as it is (``cp - CONTAINER:DIR``)."""
    trailing = dest.endswith("/")
    dest_n = os.path.normpath(dest) if dest else "."
    tar = tarfile.open(path_or_obj, mode="r:") if isinstance(path_or_obj, str) else tarfile.open(fileobj=path_or_obj, mode="r:")
    with tar:
        members = tar.getmembers()
        if not members:
            raise CopyError("no files to copy: the archive is empty")
        for m in members:
            if not keep_owner:
                m.uid = m.gid = 0
                m.uname = m.gname = "root"
        if raw:
            if not os.path.isdir(dest_n):
                raise CopyError(f"extraction point is not a directory: {dest}" if os.path.exists(dest_n)
                                else f"Could not find the file {dest}")
            _extract(tar, members, dest_n, keep_owner)
            return
        top = members[0].name.split("/")[0]
        src_dir = top == "." or members[0].isdir()
        if os.path.isdir(dest_n):
            _extract(tar, members, dest_n, keep_owner)
            return
        if os.path.lexists(dest_n):
            if src_dir:
                raise CopyError(f'cannot overwrite non-directory "{dest}" with directory')
            _rename(members, top, os.path.basename(dest_n))
            _extract(tar, members, os.path.dirname(dest_n) or ".", keep_owner)
            return
        parent = os.path.dirname(dest_n) or "."
        if trailing and not src_dir:
            raise CopyError(f'destination directory "{dest}" must exist')
        if not os.path.isdir(parent):
            raise CopyError(f"no such directory: {parent}" if not os.path.lexists(parent) else f"not a directory: {parent}")
        if top == ".":
            os.mkdir(dest_n, 0o755)
            _extract(tar, members, dest_n, keep_owner)
            return
        _rename(members, top, os.path.basename(dest_n))
        _extract(tar, members, parent, keep_owner)


def _rename(members: list[tarfile.TarInfo], old: str, new: str) -> None:
    for m in members:
        if m.name == old:
            m.name = new
        elif m.name.startswith(old + "/"):
            m.name = new + m.name[len(old):]


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], where: str, keep_owner: bool) -> None:
    def keep(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        m = tarfile.tar_filter(member, path)
        if member.name in (".", "./"):
            return None  # type: ignore[return-value]  # the directory itself exists
        return m

    try:
        tar.extractall(where, members=members, numeric_owner=True, filter=keep)
    except (tarfile.FilterError, OSError) as exc:
        raise CopyError(str(exc)) from None
