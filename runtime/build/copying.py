"""COPY and ADD: which source files a step takes, and filling a new layer with them.

Docker's rules: sources are relative to the context (or to another stage's root with
``--from``) and may not leave it; they may hold wildcards; a directory source copies its
contents; several sources need a destination that ends with ``/``; a destination that
ends with ``/`` or is a directory of the image is a directory; a relative destination is
relative to WORKDIR; files are owned by 0:0 unless ``--chown``; modes and times are kept.
ADD also extracts a local tar archive (plain, gzip, bzip2 or xz) into the destination.
"""

from __future__ import annotations

import glob
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass

from runtime.build.view import ImageView

__all__ = ["CopyError", "Source", "find_sources", "plan", "fill_layer", "Entry", "resolve_owner"]

_WILDCARDS = frozenset("*?[")


class CopyError(ValueError):
    """One line for the user, in Docker's words."""


@dataclass(frozen=True)
class Source:
    name: str  # as written (after expansion)
    path: str  # on the host
    is_dir: bool
    archive: bool = False  # ADD: extract it
    base: str = ""  # the file name it is copied under into a directory (a link's own name)


@dataclass(frozen=True)
class Entry:
    """One file to put in the layer: its path in the image and where it comes from."""

    dest: str  # absolute, in the image
    src: str  # on the host; "" for a destination directory itself (made, not copied)
    archive: bool = False


def scoped_path(root: str, rel: str) -> str:
    """``rel`` under ``root`` with symlinks followed as if ``root`` were ``/`` (Docker's
    FollowSymlinkInScope): a link can never lead out of the context or the image."""
    parts = [p for p in rel.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        if os.path.islink(here):
            hops += 1
            if hops > 255:
                raise CopyError(f"too many levels of symbolic links: {rel}")
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def find_sources(root: str, names: list[str], what: str, add: bool = False) -> list[Source]:
    """Resolve COPY/ADD source names under ``root`` (the context, or a stage's tree)."""
    out: list[Source] = []
    for name in names:
        if add and name.startswith(("http://", "https://", "git@")):
            raise CopyError(f"{what} failed: ADD from a URL is not supported: there is no network for builds")
        rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
        if rel == ".." or rel.startswith("../"):
            raise CopyError(f"{what} failed: forbidden path outside the build context: {name} ()")
        if _WILDCARDS & set(rel):
            matches = sorted(glob.glob(rel, root_dir=root, include_hidden=True))
            paths = [os.path.join(root, m) for m in matches]
        else:
            paths = [os.path.join(root, rel)]
            if not os.path.lexists(paths[0]):
                raise CopyError(
                    f"{what} failed: file not found in build context or excluded by .dockerignore: stat {name}: file does not exist"
                )
        for p in paths:
            real = scoped_path(root, os.path.relpath(p, root))
            if not os.path.lexists(real):  # a link to what the context does not have
                raise CopyError(
                    f"{what} failed: file not found in build context or excluded by .dockerignore: stat {name}: file does not exist"
                )
            is_dir = os.path.isdir(real)
            archive = add and not is_dir and _is_archive(real)
            out.append(Source(name, real, is_dir, archive, os.path.basename(p.rstrip("/")) or "."))
    if not out:
        raise CopyError(f"{what} failed: no source files were specified")
    return out


def _is_archive(path: str) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def plan(sources: list[Source], dest: str, workdir: str, view: ImageView, what: str) -> list[Entry]:
    """The entries of the new layer, in Docker's destination rules."""
    want_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
    full = posixpath.normpath(posixpath.join(workdir or "/", dest)) if not dest.startswith("/") else posixpath.normpath(dest)
    if full == "//":
        full = "/"
    if len(sources) > 1 and not want_dir:
        raise CopyError(f"{what} failed: when using {what} with more than one source file, the destination must be a directory and end with a /")
    existing = view.lookup(full)
    dest_is_dir = want_dir or full == "/" or (existing is not None and os.path.isdir(existing))
    entries: list[Entry] = []
    for src in sources:
        if src.is_dir:
            entries.append(Entry(full, ""))  # the destination itself: made as Docker makes it, not a copy of the source dir
            for dirpath, dirnames, filenames in os.walk(src.path):
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, src.path)
                for n in sorted(dirnames) + sorted(filenames):
                    rel = n if rel_dir == "." else f"{rel_dir}/{n}"
                    entries.append(Entry(posixpath.join(full, rel), os.path.join(dirpath, n)))
                # symlinked directories are copied as links, not walked
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        elif src.archive:
            entries.append(Entry(full, src.path, archive=True))
        else:
            target = posixpath.join(full, src.base) if dest_is_dir else full
            entries.append(Entry(target, src.path))
    return entries


def resolve_owner(chown: str | None, view: ImageView, what: str) -> tuple[int, int]:
    """``--chown=USER[:GROUP]`` with names looked up in the image's /etc/passwd and /etc/group."""
    if not chown:
        return 0, 0
    user, _, group = chown.partition(":")
    uid, gid = _lookup(user, view.lookup("/etc/passwd"), 2, what, "user")
    if group:
        gid = _lookup(group, view.lookup("/etc/group"), 2, what, "group")[0]
    return uid, gid


def _lookup(name: str, table: str | None, field: int, what: str, kind: str) -> tuple[int, int]:
    if name.isdigit():
        return int(name), int(name)
    if table is not None:
        with open(table, errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if parts[0] == name and len(parts) > 3 and parts[field].isdigit():
                    return int(parts[field]), int(parts[3]) if parts[3].isdigit() else 0
    raise CopyError(f"{what} failed: unable to convert uid/gid chown string to host mapping: can't find uid for {kind} {name}: no such {kind}: {name}")


def fill_layer(layer: str, entries: list[Entry], view: ImageView, owner: tuple[int, int]) -> None:
    """Put ``entries`` under the layer directory ``layer``; the directories on the way take
    the image's metadata where the image has them (an overlay upper directory's metadata
    wins over the lower's), else root's 0755."""
    uid, gid = owner
    for e in entries:
        target = layer + e.dest
        _parents(layer, posixpath.dirname(e.dest), view)
        if e.archive:
            _extract(e.src, target, layer, view)
            continue
        if not e.src:  # a destination directory (of a directory source, or WORKDIR's)
            _parents(layer, e.dest, view)  # the image's metadata if it has it, else root's 0755
            if view.lookup(e.dest) is None and e.dest != "/":
                os.lchown(target, uid, gid)
            continue
        st = os.lstat(e.src)
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)
            os.makedirs(target, exist_ok=True)
            os.chmod(target, stat.S_IMODE(st.st_mode))
        else:
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.unlink(target)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(e.src), target)
            else:
                shutil.copy2(e.src, target, follow_symlinks=False)
        os.lchown(target, uid, gid)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _parents(layer: str, directory: str, view: ImageView) -> None:
    parts = [p for p in directory.split("/") if p]
    current = ""
    for part in parts:
        current += "/" + part
        target = layer + current
        if os.path.isdir(target):
            continue
        os.mkdir(target)
        existing = view.lookup(current)
        if existing is not None and os.path.isdir(existing):
            st = os.stat(existing)
            os.chmod(target, stat.S_IMODE(st.st_mode))
            os.chown(target, st.st_uid, st.st_gid)
        else:
            os.chmod(target, 0o755)


def _extract(archive: str, target: str, layer: str, view: ImageView) -> None:
    """ADD of a local tar: its contents land in the destination directory."""
    _parents(layer, target[len(layer):], view)
    os.makedirs(target, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(target, numeric_owner=True, filter=lambda m, p: tarfile.tar_filter(m, p).replace(mode=m.mode, uid=m.uid, gid=m.gid, deep=False))
    except (tarfile.TarError, OSError) as exc:
        raise CopyError(f"ADD failed: cannot extract {os.path.basename(archive)}: {exc}") from None
