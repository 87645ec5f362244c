"""The image store: content-addressed layers and configs under ``<engine root>/images``.

Layout::

    images/layers/<hex>/diff/               a layer unpacked (overlayfs whiteout format), <hex> = its diff id
    images/layers/<hex>/tar-split.*.gz      the tar's headers, to give back the exact tar (``save``)
    images/layers/<hex>/layer.json          {"diff_id", "size", "tar_size"}
    images/configs/<hex>.json               an image config, byte for byte; <hex> = sha256 = the image id
    images/repositories.json                {"name:tag": "sha256:<hex>"}, replaced atomically
    images/tmp/                             work in progress; emptied at start

New content is made under tmp/ and renamed into place once complete, layers first,
then the config, then the reference index: a cut or corrupt archive leaves nothing,
and an engine killed half-way leaves at worst layers no image names, removed at the
next start. ``resolve`` gives the launcher a ``runtime.engine.rootfs.Image``;
``host`` is the built-in image with no layers (the host's root, read-only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from netcore import Conflict, InvalidConfig, NetcoreError, NotFound

from runtime.engine import archives, layers, references
from runtime.engine.rootfs import HOST_IMAGE, Image
from runtime.engine.streams import ArchiveError, Source

__all__ = ["ImageStore", "HOST"]

log = logging.getLogger("netcore.images")
HOST = "host"
Users = Callable[[str], "list[tuple[str, bool]]"]  # image id -> [(container id, running)]


def _now() -> str:
    """RFC 3339 with nanoseconds, as Docker writes ``created``: two imports a second apart or less differ."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def _hex(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise NotFound(f"No such layer: {digest}")
    return hexd


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ImageStore:
    def __init__(self, root: str, users: Users | None = None) -> None:
        self.dir = os.path.join(root, "images")
        self.layers_dir = os.path.join(self.dir, "layers")
        self.configs_dir = os.path.join(self.dir, "configs")
        self.tmp_dir = os.path.join(self.dir, "tmp")
        self.index_path = os.path.join(self.dir, "repositories.json")
        self.users: Users = users or (lambda image_id: [])
        self.lock = threading.RLock()
        for d in (self.layers_dir, self.configs_dir):
            os.makedirs(d, exist_ok=True)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        os.makedirs(self.tmp_dir)
        self.refs: dict[str, str] = self._read_index()
        self._configs: dict[str, dict[str, Any]] = {}
        self._gc_layers()

    # ------------------------------------------------------------ on disk -----

    def _read_index(self) -> dict[str, str]:
        try:
            with open(self.index_path) as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def _write_index(self) -> None:
        _atomic_write(self.index_path, json.dumps(self.refs, indent=1, sort_keys=True).encode())

    def _config_path(self, image_id: str) -> str:
        return os.path.join(self.configs_dir, _hex(image_id) + ".json")

    def _config_bytes(self, image_id: str) -> bytes:
        with open(self._config_path(image_id), "rb") as f:
            return f.read()

    def config(self, image_id: str) -> dict[str, Any]:
        """The whole image config (``config``, ``rootfs.diff_ids``, ``history``, ...): a copy,
        the caller may change it."""
        return copy.deepcopy(self._config(image_id))

    def _config(self, image_id: str) -> dict[str, Any]:
        """Parsed once and cached: a config never changes, its name is its hash."""
        cfg = self._configs.get(image_id)
        if cfg is None:
            cfg = self._configs[image_id] = json.loads(self._config_bytes(image_id))
        return cfg

    def image_ids(self) -> list[str]:
        return ["sha256:" + n[:-5] for n in os.listdir(self.configs_dir) if n.endswith(".json")]

    def _layer_dir(self, layer_id: str) -> str:
        return os.path.join(self.layers_dir, _hex(layer_id))

    def layer_path(self, layer_id: str) -> str:
        """The unpacked directory of a stored layer (overlayfs format), for a lowerdir."""
        path = os.path.join(self._layer_dir(layer_id), "diff")
        if not os.path.isdir(path):
            raise NotFound(f"No such layer: {layer_id}")
        return path

    def _layer_meta(self, layer_id: str) -> dict[str, Any]:
        with open(os.path.join(self._layer_dir(layer_id), "layer.json")) as f:
            return json.load(f)

    def _gc_layers(self) -> None:
        """Remove layers no image names (left by an engine killed between a layer and its image)."""
        used = {d for i in self.image_ids() for d in self._diff_ids(i)}
        for hexd in os.listdir(self.layers_dir):
            if "sha256:" + hexd not in used:
                self._remove_dir(os.path.join(self.layers_dir, hexd))

    def _remove_dir(self, path: str) -> None:
        """Rename out of the way first: a half-removed layer is never seen under its name."""
        trash = tempfile.mkdtemp(dir=self.tmp_dir, prefix="rm-")
        try:
            os.rename(path, os.path.join(trash, "x"))
        except FileNotFoundError:
            pass
        shutil.rmtree(trash, ignore_errors=True)

    def _diff_ids(self, image_id: str) -> list[str]:
        try:
            return list(self._config(image_id)["rootfs"]["diff_ids"])
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _tmp(self, prefix: str) -> str:
        return tempfile.mkdtemp(dir=self.tmp_dir, prefix=prefix)

    # ------------------------------------------------------------ lookups -----

    def names_of(self, image_id: str) -> list[str]:
        return sorted(r for r, i in self.refs.items() if i == image_id)

    def _find_id(self, ref: str) -> str:
        """An image id from a reference, a full id or a unique id prefix (a name first, as Docker)."""
        if self._is_name(ref):
            return self.refs[references.normalize(ref)]
        if references.is_id_like(ref):
            body = ref[len("sha256:") :] if ref.startswith("sha256:") else ref
            hits = [i for i in self.image_ids() if i[7:].startswith(body)]
            if len(hits) == 1 and (len(body) >= 4 or ref.startswith("sha256:") or ref in (i[7:] for i in hits)):
                return hits[0]
            if len(hits) > 1:
                raise NotFound(f"No such image: {ref} (ambiguous: {len(hits)} images start with it)")
        try:
            key = references.normalize(ref)
        except InvalidConfig:
            raise NotFound(f"No such image: {ref}") from None
        if key in self.refs:
            return self.refs[key]
        raise NotFound(f"No such image: {key}")

    def _is_name(self, ref: str) -> bool:
        try:
            return references.normalize(ref) in self.refs
        except InvalidConfig:
            return False

    def resolve(self, ref: str) -> Image:
        """What the launcher runs: the image's layers (lowest first) and its config."""
        if ref in (HOST, f"{HOST}:latest"):
            return HOST_IMAGE
        with self.lock:
            image_id = self._find_id(ref)
            cfg = self._config(image_id)
            paths = tuple(self.layer_path(d) for d in self._diff_ids(image_id))
            return Image(image_id, paths, dict(cfg.get("config") or {}), tuple(self.names_of(image_id)))

    def _size(self, image_id: str) -> int:
        total = 0
        for d in self._diff_ids(image_id):
            try:
                total += int(self._layer_meta(d)["size"])
            except (OSError, ValueError, KeyError):
                pass
        return total

    def list(self) -> list[dict[str, Any]]:
        """Docker's ``GET /images/json``, the built-in ``host`` first."""
        with self.lock:
            out = [{"Id": HOST, "ParentId": "", "RepoTags": [f"{HOST}:latest"], "RepoDigests": [], "Created": 0, "Size": 0, "Labels": {}, "Containers": -1, "BuiltIn": True}]
            rows = []
            for image_id in self.image_ids():
                cfg = self._config(image_id)
                rows.append({
                    "Id": image_id,
                    "ParentId": "",
                    "RepoTags": self.names_of(image_id),
                    "RepoDigests": [],
                    "Created": _epoch(cfg.get("created")),
                    "Size": self._size(image_id),
                    "Labels": (cfg.get("config") or {}).get("Labels") or {},
                    "Containers": len(self.users(image_id)),
                })
            return out + sorted(rows, key=lambda r: r["Created"], reverse=True)

    def inspect(self, ref: str) -> dict[str, Any]:
        """Docker's ``image inspect``."""
        if ref in (HOST, f"{HOST}:latest"):
            return {"Id": HOST, "RepoTags": [f"{HOST}:latest"], "RepoDigests": [], "Comment": "the host's root filesystem, read-only (built in)",
                    "Created": "", "Config": {}, "Architecture": archives.HOST_ARCH, "Os": "linux", "Size": 0,
                    "RootFS": {"Type": "host", "Layers": []}}
        with self.lock:
            image_id = self._find_id(ref)
            cfg = self.config(image_id)
            diff_ids = self._diff_ids(image_id)
            paths = [self.layer_path(d) for d in diff_ids]
            history = cfg.get("history") or []
            return {
                "Id": image_id,
                "RepoTags": self.names_of(image_id),
                "RepoDigests": [],
                "Parent": "",
                "Comment": cfg.get("comment") or (history[-1].get("comment", "") if history else ""),
                "Created": cfg.get("created", ""),
                "DockerVersion": cfg.get("docker_version", ""),
                "Author": cfg.get("author", ""),
                "Config": cfg.get("config") or {},
                "Architecture": cfg.get("architecture", ""),
                "Variant": cfg.get("variant", ""),
                "Os": cfg.get("os", ""),
                "Size": self._size(image_id),
                "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(reversed(paths))} if paths else {}},
                "RootFS": {"Type": "layers", "Layers": diff_ids},
                "Metadata": {"LastTagTime": ""},
            }

    # ------------------------------------------------------------ adding ------

    def _commit_layer_dir(self, unpacked: archives.Unpacked) -> str:
        """Move an unpacked layer into place (or drop it: the store has it already); its id."""
        layer_id = unpacked.info.diff_id
        dest = self._layer_dir(layer_id)
        if os.path.isdir(os.path.join(dest, "diff")):
            shutil.rmtree(unpacked.dir, ignore_errors=True)
            return layer_id
        meta = {"diff_id": layer_id, "size": unpacked.info.size, "tar_size": unpacked.info.tar_size}
        with open(os.path.join(unpacked.dir, "layer.json"), "w") as f:
            json.dump(meta, f)
        os.chmod(unpacked.dir, 0o755)
        os.rename(unpacked.dir, dest)
        return layer_id

    def _add_config(self, config: bytes) -> str:
        image_id = "sha256:" + hashlib.sha256(config).hexdigest()
        path = self._config_path(image_id)
        if not os.path.exists(path):
            _atomic_write(path, config)
        return image_id

    @staticmethod
    def _valid_ref(ref: str) -> str:
        """``name:tag`` of a reference a user may give an image (not ``host``: that is the built-in one)."""
        key = references.normalize(ref)
        if key.split(":")[0] == HOST:
            raise InvalidConfig(f"invalid reference {ref!r}: {HOST} is the built-in image")
        return key

    def _set_refs(self, image_id: str, refs: list[str]) -> list[str]:
        """Point each reference at the image (moving it from another image) and write the index once."""
        keys = [self._valid_ref(ref) for ref in refs]
        if keys:
            for key in keys:
                self.refs[key] = image_id
            self._write_index()
        return keys

    def import_rootfs(self, src: Source, ref: str | None = None, message: str = "", changes: dict[str, Any] | None = None) -> str:
        """``docker import``: one root filesystem tarball becomes a one-layer image; its id."""
        if ref:
            self._valid_ref(ref)  # a bad name fails before the archive is read
        tmp = self._tmp("import-")
        try:
            unpacked = archives.unpack_rootfs(src, tmp)
            created = _now()
            config = {
                "architecture": archives.HOST_ARCH,
                "config": dict(changes or {}),
                "created": created,
                "history": [{"created": created, "comment": message or "Imported from -"}],
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [unpacked.info.diff_id]},
            }
            data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
            with self.lock:
                self._commit_layer_dir(unpacked)
                image_id = self._add_config(data)
                self._set_refs(image_id, [ref] if ref else [])
            return image_id
        except ArchiveError as exc:
            raise InvalidConfig(str(exc)) from None
        except OSError as exc:  # the disk (full?) or the connection: one line, nothing kept
            raise NetcoreError(f"import failed: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def load(self, src: Source) -> list[str]:
        """``docker load``: every image of a docker-save or OCI archive; Docker's lines to print."""
        tmp = self._tmp("load-")
        try:
            loaded = archives.ArchiveReader(tmp).read(src)
            for img in loaded:
                for ref in img.refs:
                    self._valid_ref(ref)
            lines = []
            with self.lock:
                for img in loaded:
                    for unpacked in img.layers:
                        if os.path.isdir(unpacked.dir):  # not yet moved (two images may share it)
                            self._commit_layer_dir(unpacked)
                    image_id = self._add_config(img.config)
                    keys = self._set_refs(image_id, img.refs)
                    lines += [f"Loaded image: {k}" for k in keys] or [f"Loaded image ID: {image_id}"]
            return lines
        except ArchiveError as exc:
            raise InvalidConfig(str(exc)) from None
        except OSError as exc:
            raise NetcoreError(f"load failed: {exc.strerror or exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def commit_layer(self, src_dir: str) -> str:
        """An overlay upper directory (0/0 devices, opaque xattrs) becomes a stored layer; its id.

        ``src_dir`` is copied, not moved: the caller keeps it and removes it."""
        if not os.path.isdir(src_dir):
            raise NotFound(f"no such directory: {src_dir}")
        tmp = self._tmp("commit-")
        try:
            diff = os.path.join(tmp, "layer", "diff")
            os.mkdir(os.path.dirname(diff), 0o700)
            res = subprocess.run(["cp", "-a", "--", src_dir.rstrip("/") + "/.", diff], capture_output=True, text=True)
            if res.returncode != 0:
                raise InvalidConfig(f"cannot copy {src_dir}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            info, raw, segments = layers.tar_split_of_dir(diff)
            layers.write_split(os.path.dirname(diff), raw, segments)
            with self.lock:
                return self._commit_layer_dir(archives.Unpacked(os.path.dirname(diff), info, info.diff_id))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def create_image(self, layer_ids: list[str], config: dict[str, Any], ref: str | None = None, history: list[dict[str, Any]] | None = None) -> Image:
        """A new image of stored layers (lowest first) and a container config (``Cmd``,
        ``Entrypoint``, ``Env``, ``WorkingDir``, ``ExposedPorts``, ``User``, ``Labels``, ``Volumes``)."""
        if ref:
            self._valid_ref(ref)
        for layer_id in layer_ids:
            self.layer_path(layer_id)
        created = _now()
        doc = {
            "architecture": archives.HOST_ARCH,
            "config": dict(config),
            "created": created,
            "history": history if history is not None else [{"created": created, "created_by": "netcore"}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": list(layer_ids)},
        }
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        with self.lock:
            image_id = self._add_config(data)
            self._set_refs(image_id, [ref] if ref else [])
        return self.resolve(image_id)

    def tag(self, source: str, target: str) -> None:
        with self.lock:
            if source in (HOST, f"{HOST}:latest"):
                raise InvalidConfig(f"{HOST} is the built-in image and cannot be tagged")
            self._valid_ref(target)
            self._set_refs(self._find_id(source), [target])

    # ------------------------------------------------------------ save --------

    def save(self, refs: list[str]) -> tuple[list[archives.SavedImage], Iterator[bytes]]:
        """The images to save (checked before anything is sent) and the archive's chunks."""
        with self.lock:
            out: list[archives.SavedImage] = []
            for ref in refs:
                if ref in (HOST, f"{HOST}:latest"):
                    raise InvalidConfig(f"{HOST} is the built-in image: it has no layers to save")
                image_id = self._find_id(ref)
                named = [] if references.is_id_like(ref) and not self._is_name(ref) else [references.normalize(ref)]
                for img in out:
                    if img.id == image_id:
                        img.refs += [n for n in named if n not in img.refs]
                        break
                else:
                    entries = []
                    for d in self._diff_ids(image_id):
                        ldir = self._layer_dir(d)
                        entries.append((d, ldir, os.path.join(ldir, "diff"), int(self._layer_meta(d)["tar_size"])))
                    out.append(archives.SavedImage(image_id, self._config_bytes(image_id), entries, named))
            for img in out:  # checked before the first byte goes: a changed layer is an error answer
                for diff_id, ldir, diff, size in img.layers:
                    if layers.replay_digest(ldir, diff) != (diff_id, size):
                        raise Conflict(f"layer {diff_id} of {img.refs[0] if img.refs else img.id} has changed on disk since it was stored")
        return out, archives.write_docker_archive(out)

    # ------------------------------------------------------------ removing ----

    def remove(self, ref: str, force: bool = False) -> list[dict[str, str]]:
        """Docker's ``rmi``: untag, and delete the image once no name and no container is left."""
        if ref in (HOST, f"{HOST}:latest"):
            raise Conflict(f"conflict: unable to remove {HOST}: it is the built-in image")
        with self.lock:
            image_id = self._find_id(ref)
            short = image_id[7:19]
            users = self.users(image_id)
            tags = self.names_of(image_id)
            by_name = self._is_name(ref)
            out: list[dict[str, str]] = []
            if by_name:
                key = references.normalize(ref)
                if len(tags) == 1 and users and not force:
                    raise Conflict(f'conflict: unable to remove repository reference "{ref}" (must force) - container {users[0][0][:12]} is using its referenced image {short}')
                del self.refs[key]
                self._write_index()
                out.append({"Untagged": key})
                if len(tags) > 1 or users:
                    return out
            else:
                running = [c for c, up in users if up]
                if running:
                    raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is being used by running container {running[0][:12]}")
                if users and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is being used by stopped container {users[0][0][:12]}")
                if len(tags) > 1 and not force:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
                for key in tags:
                    del self.refs[key]
                    out.append({"Untagged": key})
                if tags:
                    self._write_index()
                if users:
                    return out  # a stopped container still stacks its layers: the image stays, untagged
            out += self._delete(image_id)
            return out

    def _delete(self, image_id: str) -> list[dict[str, str]]:
        diff_ids = self._diff_ids(image_id)
        os.unlink(self._config_path(image_id))
        self._configs.pop(image_id, None)
        still = {d for i in self.image_ids() for d in self._diff_ids(i)}
        out = [{"Deleted": image_id}]
        for d in dict.fromkeys(diff_ids):
            if d not in still:
                self._remove_dir(self._layer_dir(d))
                out.append({"Deleted": d})
        return out


def _epoch(stamp: str | None) -> int:
    """Seconds since the epoch of an RFC 3339 time as image configs carry it (nanoseconds and all)."""
    import calendar
    import re

    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:?\d\d)?", stamp or "")
    if not m:
        return 0
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]) + (0, 0, 0))
    tz = m.group(7)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return secs
