"""Image archives: reading ``docker save`` and OCI image-layout archives, writing ``docker save``'s.

Reading is one pass over the archive as it arrives: each layer blob is unpacked
into a temporary directory the moment it passes (``layers.unpack``), the small JSON
files (manifest.json, index.json, configs, OCI manifests) are kept in memory; at
the end the manifests say which unpacked layers make which image, and every layer's
digest is checked against its image config. Nothing here touches the store: the
caller moves what was unpacked into place, or removes the temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runtime.engine import layers
from runtime.engine.streams import ArchiveError, GunzipReader, GZIP_MAGIC, Prefixed, Source, TarStream, open_layer_stream

__all__ = ["Unpacked", "LoadedImage", "ArchiveReader", "unpack_rootfs", "write_docker_archive", "SavedImage"]

MAX_JSON = 16 << 20  # a manifest or config larger than this is not one
_INDEX_TYPES = {"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"}
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
HOST_ARCH = _ARCH.get(platform.machine(), platform.machine())


@dataclass
class Unpacked:
    """A layer blob unpacked in the temporary directory: ``dir/diff`` and its tar-split."""

    dir: str
    info: layers.LayerInfo
    blob_digest: str  # "sha256:<hex>" of the blob as stored in the archive (compressed or not)


@dataclass
class LoadedImage:
    config: bytes  # exactly as in the archive: its sha256 is the image id
    layers: list[Unpacked]
    refs: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()


class _Member:
    """A member's content inside an outer archive being read: ``size`` bytes from ``ts``."""

    def __init__(self, ts: TarStream, size: int) -> None:
        self.ts, self.left = ts, size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if n < 0 else min(n, self.left)
        data = self.ts.read(n)
        if not data:
            raise ArchiveError("unexpected end of archive (truncated?)")
        self.left -= len(data)
        return data


def _outer_stream(src: Source) -> TarStream:
    head = src.read(2)
    reader: Source = Prefixed(head, src)
    if head == GZIP_MAGIC:
        reader = GunzipReader(reader)
    return TarStream(reader, record=False)


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def unpack_layer_blob(src: Source, dest: str) -> Unpacked:
    """One layer blob (tar, or gzip'd tar) into ``dest``/diff with its tar-split beside it."""
    os.mkdir(dest, 0o700)
    outer, ts = open_layer_stream(src)
    info = layers.unpack(ts, os.path.join(dest, "diff"))
    outer.drain()
    layers.write_split(dest, ts.raw, ts.segments)
    return Unpacked(dest, info, "sha256:" + outer.hexdigest())


def unpack_rootfs(src: Source, tmp: str) -> Unpacked:
    """``docker import``: the whole stream is one root filesystem tarball (plain or gzip)."""
    return unpack_layer_blob(src, os.path.join(tmp, "layer"))


class ArchiveReader:
    """Reads a ``docker save`` or OCI image-layout archive into ``tmp`` (see the module's doc)."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.files: dict[str, bytes] = {}
        self.layers: dict[str, Unpacked] = {}
        self.links: dict[str, str] = {}

    def read(self, src: Source) -> list[LoadedImage]:
        ts = _outer_stream(src)
        try:
            tar = tarfile.open(fileobj=ts, mode="r:")  # type: ignore[arg-type]
        except tarfile.ReadError as exc:
            raise ArchiveError(f"invalid archive: {exc}") from None
        try:
            while (m := tar.next()) is not None:
                self._member(ts, m)
            ts.finish(tar.offset)
        except tarfile.TarError as exc:
            raise ArchiveError(f"invalid archive: {exc}") from None
        if "manifest.json" in self.files:
            return self._docker()
        if "index.json" in self.files:
            return self._oci()
        raise ArchiveError("invalid archive: no manifest.json nor index.json (not a docker save or OCI image-layout archive)")

    def _member(self, ts: TarStream, m: tarfile.TarInfo) -> None:
        name = _norm(m.name)
        if m.issym():
            self.links[name] = _norm(posixpath.join(posixpath.dirname(name), m.linkname))
            return
        if m.islnk():
            self.links[name] = _norm(m.linkname)
            return
        if not m.isreg():
            return
        src = _Member(ts, m.size)
        head = src.read(min(m.size, 512))
        base = posixpath.basename(name)
        if base in ("manifest.json", "index.json", "oci-layout", "repositories", "json", "VERSION") or head.lstrip()[:1] in (b"{", b"["):
            if m.size > MAX_JSON:
                raise ArchiveError(f"invalid archive: {name} is too large for a manifest or config")
            self.files[name] = head + src.read()
            return
        try:
            self.layers[name] = unpack_layer_blob(Prefixed(head, src), os.path.join(self.tmp, str(len(self.layers))))
        except ArchiveError as exc:
            raise ArchiveError(f"invalid layer {name} in archive: {exc}") from None

    # -- which layers make which image ------------------------------------------
    def _resolve(self, name: str) -> str:
        name = _norm(name)
        for _ in range(40):
            if name not in self.links:
                return name
            name = self.links[name]
        raise ArchiveError(f"invalid archive: symlink loop at {name}")

    def _file(self, name: str) -> bytes:
        path = self._resolve(name)
        if path not in self.files:
            raise ArchiveError(f"invalid archive: {name} is missing")
        return self.files[path]

    def _layer(self, name: str) -> Unpacked:
        path = self._resolve(name)
        if path not in self.layers:
            raise ArchiveError(f"invalid archive: layer {name} is missing")
        return self.layers[path]

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self._file(name))
        except ValueError:
            raise ArchiveError(f"invalid archive: {name} is not valid JSON") from None

    def _checked(self, config: bytes, found: list[Unpacked], refs: list[str]) -> LoadedImage:
        try:
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ArchiveError("invalid archive: an image config has no rootfs.diff_ids") from None
        if len(diff_ids) != len(found):
            raise ArchiveError(f"invalid archive: the config lists {len(diff_ids)} layers, the manifest {len(found)}")
        for i, (want, got) in enumerate(zip(diff_ids, found)):
            if want != got.info.diff_id:
                raise ArchiveError(f"invalid diffID for layer {i}: expected {want!r}, got {got.info.diff_id!r}")
        return LoadedImage(config, found, refs)

    def _docker(self) -> list[LoadedImage]:
        manifest = self._json("manifest.json")
        if not isinstance(manifest, list):
            raise ArchiveError("invalid archive: manifest.json is not a list")
        out = []
        for entry in manifest:
            try:
                config = self._file(entry["Config"])
                found = [self._layer(p) for p in entry.get("Layers") or []]
            except (KeyError, TypeError):
                raise ArchiveError("invalid archive: malformed manifest.json entry") from None
            out.append(self._checked(config, found, list(entry.get("RepoTags") or [])))
        return out

    def _blob(self, digest: str) -> str:
        algo, _, hexd = str(digest).partition(":")
        if algo != "sha256" or not hexd:
            raise ArchiveError(f"invalid archive: unsupported digest {digest!r}")
        return f"blobs/sha256/{hexd}"

    def _has_blobs(self, desc: dict[str, Any]) -> bool:
        path = self._resolve(self._blob(desc.get("digest", "")))
        return path in self.files or path in self.layers

    def _oci_manifest(self, desc: dict[str, Any], depth: int = 0) -> dict[str, Any] | None:
        """The image manifest a descriptor leads to (an index: this host's platform, present in the archive)."""
        if depth > 4 or not self._has_blobs(desc):
            return None
        doc = self._json(self._blob(desc["digest"]))
        media = desc.get("mediaType") or doc.get("mediaType")
        if media in _INDEX_TYPES or "manifests" in doc:
            children = doc.get("manifests") or []
            ranked = sorted(children, key=lambda d: (d.get("platform") or {}).get("architecture") != HOST_ARCH)
            for child in ranked:
                if (d := self._oci_manifest(child, depth + 1)) is not None:
                    return d
            return None
        return doc

    def _oci(self) -> list[LoadedImage]:
        index = self._json("index.json")
        out = []
        for desc in index.get("manifests") or []:
            manifest = self._oci_manifest(desc)
            if manifest is None:
                raise ArchiveError(f"invalid archive: no manifest in the archive for {desc.get('digest')}")
            try:
                config = self._file(self._blob(manifest["config"]["digest"]))
                found = []
                for layer in manifest.get("layers") or []:
                    unpacked = self._layer(self._blob(layer["digest"]))
                    if unpacked.blob_digest != layer["digest"]:
                        raise ArchiveError(f"invalid archive: blob {layer['digest']} has digest {unpacked.blob_digest}")
                    found.append(unpacked)
            except (KeyError, TypeError):
                raise ArchiveError("invalid archive: malformed OCI manifest") from None
            annotations = desc.get("annotations") or {}
            name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name") or ""
            refs = [name] if "/" in name or ":" in name else []  # a bare ref.name is a tag alone: no repository
            out.append(self._checked(config, found, refs))
        return out


# ------------------------------------------------------------- writing ---------


@dataclass
class SavedImage:
    id: str  # "sha256:<hex>"
    config: bytes
    layers: list[tuple[str, str, str, int]]  # (diff id, layer dir, diff dir, tar size)
    refs: list[str]


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE, mtime: int = 0) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mtime = size, kind, mtime
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _pad(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _file(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data)) + data + _pad(len(data))


def write_docker_archive(images: Iterable[SavedImage]) -> Iterator[bytes]:
    """A ``docker save`` archive (manifest.json, ``<config>.json``, ``<layer>/layer.tar``), as
    chunks. Layers are replayed from their tar-split: the very tar their diff id names."""
    manifest = []
    written: set[str] = set()
    for img in images:
        entry = {"Config": img.id.split(":", 1)[1] + ".json", "RepoTags": img.refs or None, "Layers": []}
        for diff_id, layer_dir, diff, size in img.layers:
            hexd = diff_id.split(":", 1)[1]
            entry["Layers"].append(f"{hexd}/layer.tar")
            if hexd in written:
                continue
            written.add(hexd)
            yield _header(f"{hexd}/", 0, tarfile.DIRTYPE)
            yield _header(f"{hexd}/layer.tar", size)
            sha = hashlib.sha256()
            sent = 0
            for chunk in layers.replay(layer_dir, diff):
                sha.update(chunk)
                sent += len(chunk)
                yield chunk
            if sent != size or "sha256:" + sha.hexdigest() != diff_id:
                raise ArchiveError(f"layer {diff_id} changed on disk since it was stored")
            yield _pad(size)
        yield from _file(entry["Config"], img.config)
        manifest.append(entry)
    yield from _file("manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
