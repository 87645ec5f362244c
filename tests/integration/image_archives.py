"""Image archives made in tests with tarfile: a busybox-static rootfs, ``docker save`` and OCI layouts.

No registry is reachable here and no Docker may run on the host, so the archives are
written the way Docker and OCI tools write them: layer tars (optionally gzip'd) named
by their digests, an image config listing the layers' diff ids, and the manifests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

BUSYBOX = "/bin/busybox"


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, int(time.time()), linkname
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def tar_bytes(entries: list[tuple]) -> bytes:
    """A tar of ``(name, data)``, ``(name, None)`` for a directory, ``(name, "->", target)`` for a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if len(e) == 3 and e[1] == "->":
                _add(tar, e[0], kind=tarfile.SYMTYPE, linkname=e[2], mode=0o777)
            elif e[1] is None:
                _add(tar, e[0], kind=tarfile.DIRTYPE, mode=0o755)
            else:
                _add(tar, e[0], e[1], mode=e[2] if len(e) > 2 else 0o644)
    return buf.getvalue()


def busybox_rootfs_tar(extra: list[tuple] | None = None) -> bytes:
    """A root filesystem of Debian's busybox-static: /bin/busybox and a link per applet."""
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries: list[tuple] = [("bin", None), ("etc", None), ("tmp", None), ("proc", None), ("sys", None), ("dev", None),
                            ("bin/busybox", busybox, 0o755)]
    entries += [(f"bin/{a}", "->", "busybox") for a in sorted(set(applets) | {"sh", "true", "cat", "ls"}) if a != "busybox"]
    entries += [("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", b"root:x:0:\n")]
    return tar_bytes(entries + (extra or []))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(diff_ids: list[str], config: dict | None = None) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-11-30T10:00:00.123456789Z",
        "config": config or {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
    }
    return json.dumps(doc).encode()


def docker_save_archive(layer_tars: list[bytes], tags: list[str], config: dict | None = None, gzip_layers: bool = False) -> bytes:
    """A ``docker save`` archive (classic layout: ``<id>/layer.tar``, ``<config>.json``, manifest.json)."""
    cfg = image_config([sha(t) for t in layer_tars], config)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        paths = []
        for layer in layer_tars:
            blob = gzip.compress(layer) if gzip_layers else layer
            d = hashlib.sha256(blob).hexdigest()
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o755)
            _add(tar, f"{d}/VERSION", b"1.0")
            _add(tar, f"{d}/layer.tar", blob)
            paths.append(f"{d}/layer.tar")
        cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
        _add(tar, cfg_name, cfg)
        _add(tar, "manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": tags, "Layers": paths}]).encode())
    return buf.getvalue()


def oci_archive(layer_tars: list[bytes], name: str | None, config: dict | None = None) -> bytes:
    """An OCI image-layout archive: oci-layout, index.json, blobs/sha256 (gzip'd layers)."""
    cfg = image_config([sha(t) for t in layer_tars], config)
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for layer in layer_tars:
        blob = gzip.compress(layer)
        blobs[sha(blob)] = blob
        layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(blob), "size": len(blob)})
    blobs[sha(cfg)] = cfg
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
        "layers": layer_descs,
    }).encode()
    blobs[sha(manifest)] = manifest
    annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]} if name else {}
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
                                                "size": len(manifest), "annotations": annotations,
                                                "platform": {"architecture": "amd64", "os": "linux"}}]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for digest, blob in blobs.items():
            _add(tar, f"blobs/sha256/{digest[7:]}", blob)
        _add(tar, "index.json", json.dumps(index).encode())
    return buf.getvalue()


def whiteout_layers() -> tuple[bytes, bytes]:
    """Two layers: the first has /data/gone, /data/kept and /opaque/{a,b}; the second whites out
    /data/gone, makes /opaque opaque (adding /opaque/c) and adds /data/new."""
    base = busybox_rootfs_tar([("data", None), ("data/gone", b"old\n"), ("data/kept", b"kept\n"),
                               ("opaque", None), ("opaque/a", b"a\n"), ("opaque/b", b"b\n")])
    top = tar_bytes([("data", None), ("data/.wh.gone", b""), ("data/new", b"new\n"),
                     ("opaque", None), ("opaque/.wh..wh..opq", b""), ("opaque/c", b"c\n")])
    return base, top


def write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


def layer_is_whiteout(path: str) -> bool:
    st = os.lstat(path)
    import stat

    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
