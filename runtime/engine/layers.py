"""One layer: a tar stream unpacked into a directory in overlayfs's whiteout format, and back.

Unpacking is safe against hostile archives: names are made relative, ``..`` is refused,
nothing is written through a symlink the archive made (a name below a symlink, a hard
link to one), and the target is a fresh directory the caller renames into place once
the whole layer is in (a cut or corrupt archive leaves nothing).

Whiteouts: a tar's ``.wh.NAME`` becomes a 0/0 character device NAME and
``.wh..wh..opq`` the ``trusted.overlay.opaque=y`` xattr of its directory, which is
what overlayfs reads from a lower layer. Going back (``tar_split_of_dir``), those
are written as ``.wh.`` entries again.

Every layer keeps its tar-split (the tar's bytes other than file contents, see
``streams``) so that ``save`` gives back the exact tar, and so the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.engine.streams import ArchiveError, TarStream

__all__ = ["LayerInfo", "unpack", "write_split", "tar_split_of_dir", "replay", "replay_digest", "tar_size", "OPAQUE_XATTR", "WHITEOUT_PREFIX"]

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_NAME = ".wh..wh..opq"
SPLIT_INDEX = "tar-split.json.gz"
SPLIT_RAW = "tar-split.raw.gz"
_SKIP_XATTR_PREFIX = "trusted.overlay."  # overlayfs's own bookkeeping in an upper dir
_PAX_XATTR = "SCHILY.xattr."
_EUID, _EGID = os.geteuid(), os.getegid()


def _umask() -> int:
    """The process's umask, read without setting it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        return 0o777  # unknown: always chmod


_UMASK_KEEPS = 0o777 & ~_umask()  # a file created with mode M has M & _UMASK_KEEPS


@dataclass
class LayerInfo:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar
    size: int  # bytes of file content
    tar_size: int  # bytes of the uncompressed tar


def _relname(name: str) -> str:
    """A member name relative to the layer's root; ``..`` anywhere is refused."""
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise ArchiveError(f"invalid path in layer: {name!r} leaves the layer ('..')")
    return "/".join(parts)


class _Unpacker:
    def __init__(self, root: str) -> None:
        self.root = root
        self.symlinks: set[str] = set()  # relative paths of the symlinks made so far
        self.dirs: set[str] = {""}  # relative paths known to be real directories
        self.made: set[str] = set()  # every path made so far: anything else needs no clearing (a fresh dir)
        self.dir_times: list[tuple[str, int]] = []
        self.size = 0

    def _check_parents(self, rel: str) -> None:
        """No proper prefix of ``rel`` may be a symlink made by this archive."""
        parent = rel.rpartition("/")[0]
        if parent in self.dirs:
            return
        if self.symlinks:
            probe = parent
            while probe:
                if probe in self.symlinks:
                    raise ArchiveError(f"invalid path in layer: {rel!r} goes through the symlink {probe!r}")
                probe = probe.rpartition("/")[0]
        self._mkdirs(parent)

    def _mkdirs(self, rel: str) -> None:
        if rel in self.dirs:
            return
        up = rel.rpartition("/")[0]
        self._mkdirs(up)
        path = os.path.join(self.root, rel)
        self.made.add(rel)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise ArchiveError(f"invalid layer: {rel!r} is used as a directory but is not one") from None
        self.dirs.add(rel)

    def _clear(self, rel: str, path: str, keep_dir: bool = False) -> None:
        """Make room for a new entry at ``path`` (a later entry in a tar replaces an earlier one)."""
        if rel not in self.made and rel not in self.dirs:
            self.made.add(rel)
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            import shutil

            shutil.rmtree(path)
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(rel + "/")}
            self.symlinks = {s for s in self.symlinks if not s.startswith(rel + "/")}
        else:
            os.unlink(path)
            self.symlinks.discard(rel)

    def member(self, ts: TarStream, m: tarfile.TarInfo) -> None:
        rel = _relname(m.name)
        if not rel:  # the root itself ("./")
            if m.isdir():
                self.dir_times.append(("", m.mtime))
                self._meta(self.root, m)
            return
        self._check_parents(rel)
        base = rel.rpartition("/")[2]
        parent = rel.rpartition("/")[0]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(rel, parent, base, m)
            return
        path = os.path.join(self.root, rel)
        if m.isreg():
            self._clear(rel, path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, m.mode & 0o777)
            try:
                ts.copy_to(fd, m.size, rel)
                self._meta(path, m, fd=fd)
            finally:
                os.close(fd)
            self.size += m.size
            return
        if m.isdir():
            self._clear(rel, path, keep_dir=True)
            self._mkdirs(rel)
            self.dir_times.append((rel, m.mtime))
            self._meta(path, m)
        elif m.issym():
            self._clear(rel, path)
            os.symlink(m.linkname, path)
            self.symlinks.add(rel)
            self._meta(path, m, link=True)
        elif m.islnk():
            target = _relname(m.linkname)
            if not target:
                raise ArchiveError(f"invalid hard link in layer: {m.name!r} -> {m.linkname!r}")
            self._check_parents(target)
            self._clear(rel, path)
            try:
                os.link(os.path.join(self.root, target), path, follow_symlinks=False)
            except FileNotFoundError:
                raise ArchiveError(f"invalid hard link in layer: {m.name!r} -> {m.linkname!r}: no such file before it") from None
        elif m.ischr() or m.isblk() or m.isfifo():
            self._clear(rel, path)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            self._meta(path, m)
        else:
            raise ArchiveError(f"unsupported tar entry type {m.type!r} for {m.name!r}")

    def _whiteout(self, rel: str, parent: str, base: str, m: tarfile.TarInfo) -> None:
        self._mkdirs(parent)
        pdir = os.path.join(self.root, parent)
        if base == OPAQUE_NAME:
            os.setxattr(pdir, OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # AUFS's own metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to keep
        name = base[len(WHITEOUT_PREFIX) :]
        target = os.path.join(pdir, name)
        self._clear(f"{parent}/{name}".lstrip("/"), target)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
        os.chown(target, m.uid, m.gid, follow_symlinks=False)

    def _meta(self, path: str, m: tarfile.TarInfo, fd: int | None = None, link: bool = False) -> None:
        target: int | str = fd if fd is not None else path
        nofollow = {} if fd is not None else {"follow_symlinks": False}
        if m.uid != _EUID or m.gid != _EGID:  # what we make is ours already
            os.chown(target, m.uid, m.gid, **nofollow)
        if not link and (fd is None or m.mode & 0o777 & _UMASK_KEEPS != m.mode & 0o777 or m.mode & 0o7000):
            os.chmod(target, m.mode & 0o7777)  # after chown, which clears setuid bits
        for key, value in m.pax_headers.items():
            if key.startswith(_PAX_XATTR):
                try:
                    os.setxattr(target, key[len(_PAX_XATTR) :], value.encode("utf-8", "surrogateescape"), **nofollow)
                except OSError:
                    pass  # an xattr this filesystem does not take (as Docker: best effort for non-security ones)
        if not m.isdir():
            os.utime(target, ns=(int(m.mtime * 1e9),) * 2, **nofollow)

    def finish(self) -> None:
        for rel, mtime in reversed(self.dir_times):
            os.utime(os.path.join(self.root, rel), (mtime, mtime), follow_symlinks=False)


def unpack(ts: TarStream, dest: str) -> LayerInfo:
    """Unpack the tar read from ``ts`` into the new directory ``dest``."""
    os.mkdir(dest, 0o755)
    up = _Unpacker(dest)
    try:
        tar = tarfile.open(fileobj=ts, mode="r:")  # type: ignore[arg-type]
    except tarfile.ReadError as exc:
        raise ArchiveError(f"invalid layer tar: {exc}") from None
    try:
        while True:
            m = tar.next()
            if m is None:
                break
            if m.issparse():
                raise ArchiveError(f"sparse files are not supported: {m.name!r}")
            up.member(ts, m)
        ts.finish(tar.offset)
    except tarfile.TarError as exc:
        raise ArchiveError(f"invalid layer tar: {exc}") from None
    up.finish()
    return LayerInfo("sha256:" + ts.hexdigest(), up.size, ts.pos)


# ---------------------------------------------------------------- tar-split ---


def write_split(layer_dir: str, raw: bytes | bytearray, segments: list[tuple[int, str | None, int]]) -> None:
    """Keep what ``replay`` needs next to the layer's ``diff`` directory."""
    with gzip.open(os.path.join(layer_dir, SPLIT_RAW), "wb", compresslevel=1) as f:
        f.write(raw)
    with gzip.open(os.path.join(layer_dir, SPLIT_INDEX), "wt", compresslevel=1) as f:
        json.dump(segments, f, separators=(",", ":"))


def tar_size(layer_dir: str) -> int:
    with gzip.open(os.path.join(layer_dir, SPLIT_INDEX), "rt") as f:
        return sum(raw + size for raw, _, size in json.load(f))


def replay(layer_dir: str, diff: str) -> Iterator[bytes]:
    """The layer's tar, byte for byte as it was unpacked: headers from the split, contents from ``diff``."""
    with gzip.open(os.path.join(layer_dir, SPLIT_INDEX), "rt") as f:
        segments = json.load(f)
    with gzip.open(os.path.join(layer_dir, SPLIT_RAW), "rb") as raw:
        for raw_len, path, size in segments:
            if raw_len:
                yield raw.read(raw_len)
            if path is None:
                continue
            with open(os.path.join(diff, path), "rb") as content:
                left = size
                while left:
                    chunk = content.read(min(left, 1 << 20))
                    if not chunk:
                        raise ArchiveError(f"layer file {path!r} is shorter than when it was stored")
                    left -= len(chunk)
                    yield chunk


def replay_digest(layer_dir: str, diff: str) -> tuple[str, int]:
    """(digest, size) of the tar ``replay`` gives now; ("", 0) if it cannot be made."""
    sha, size = hashlib.sha256(), 0
    try:
        for chunk in replay(layer_dir, diff):
            sha.update(chunk)
            size += len(chunk)
    except (OSError, ArchiveError):
        return "", 0
    return "sha256:" + sha.hexdigest(), size


class _SplitWriter:
    """Builds a tar-split and the digest of the tar it stands for, without writing the tar."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.raw = bytearray()
        self.segments: list[tuple[int, str | None, int]] = []
        self._mark = 0
        self.pos = 0

    def header(self, data: bytes) -> None:
        self.sha.update(data)
        self.raw += data
        self.pos += len(data)

    def content(self, path: str, rel: str, size: int) -> None:
        self.segments.append((len(self.raw) - self._mark, rel, size))
        self._mark = len(self.raw)
        with open(path, "rb") as f:
            left = size
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise ArchiveError(f"{path} changed while it was read")
                self.sha.update(chunk)
                left -= len(chunk)
        self.pos += size
        pad = -size % tarfile.BLOCKSIZE
        if pad:
            self.header(b"\0" * pad)

    def end(self) -> None:
        self.header(b"\0" * (2 * tarfile.BLOCKSIZE))
        self.segments.append((len(self.raw) - self._mark, None, 0))


def tar_split_of_dir(diff: str) -> tuple[LayerInfo, bytearray, list[tuple[int, str | None, int]]]:
    """The tar of a directory in overlayfs format (an upper dir), as a digest and a tar-split.

    0/0 character devices become ``.wh.NAME`` entries, an opaque directory gets a
    ``.wh..wh..opq`` entry, hard links are written once and linked after."""
    w = _SplitWriter()
    inodes: dict[tuple[int, int], str] = {}
    size = 0

    def info(rel: str, st: os.stat_result, path: str) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(rel)
        ti.mode, ti.uid, ti.gid, ti.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
        xattrs = {}
        try:
            for key in os.listxattr(path, follow_symlinks=False):
                if not key.startswith(_SKIP_XATTR_PREFIX):
                    xattrs[_PAX_XATTR + key] = os.getxattr(path, key, follow_symlinks=False).decode("utf-8", "surrogateescape")
        except OSError:
            pass
        ti.pax_headers = xattrs
        return ti

    def emit(ti: tarfile.TarInfo) -> None:
        w.header(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def walk(rel_dir: str) -> None:
        nonlocal size
        full_dir = os.path.join(diff, rel_dir)
        for name in sorted(os.listdir(full_dir)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = os.path.join(diff, rel)
            st = os.lstat(path)
            mode = st.st_mode
            if stat.S_ISCHR(mode) and st.st_rdev == 0:
                ti = tarfile.TarInfo(f"{rel_dir}/{WHITEOUT_PREFIX}{name}" if rel_dir else WHITEOUT_PREFIX + name)
                ti.uid, ti.gid, ti.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
                emit(ti)
                continue
            ti = info(rel, st, path)
            if stat.S_ISDIR(mode):
                ti.type = tarfile.DIRTYPE
                opaque = _is_opaque(path)
                emit(ti)
                if opaque:
                    wh = tarfile.TarInfo(f"{rel}/{OPAQUE_NAME}")
                    wh.mtime = ti.mtime
                    emit(wh)
                walk(rel)
            elif stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    ti.type, ti.linkname = tarfile.LNKTYPE, inodes[key]
                    emit(ti)
                    continue
                inodes[key] = rel
                ti.size = st.st_size
                emit(ti)
                w.content(path, rel, st.st_size)
                size += st.st_size
            elif stat.S_ISLNK(mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
                emit(ti)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                emit(ti)
            elif stat.S_ISFIFO(mode):
                ti.type = tarfile.FIFOTYPE
                emit(ti)
            # sockets are not kept, as in Docker

    walk("")
    w.end()
    return LayerInfo("sha256:" + w.sha.hexdigest(), size, w.pos), w.raw, w.segments


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
