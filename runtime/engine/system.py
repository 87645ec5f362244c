"""``info``, ``version``, ``system df`` and the build-cache part of ``system prune``: the
engine's facts in Docker's API shapes.

Sizes are the files' lengths under a directory (``listing.dir_size``, as Docker's ``SizeRw``):
an image's size is its layers', a container's is its writable (upper) dir, a volume's its
data dir. The build cache is the cache's entries plus the layers no image uses any more
(the steps' layers of images since removed).
"""

from __future__ import annotations

import os
import platform
import sys
import uuid
from typing import Any

from runtime.engine.listing import dir_size

__all__ = ["info", "version", "disk_usage", "prune_build_cache", "API_VERSION"]

API_VERSION = "1.43"  # the Docker API version whose shapes the engine answers in


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("netcore")
    except Exception:
        return "0.1.0"


def _engine_id(root: str) -> str:
    """A stable id of this engine (Docker's ``ID``), made at first ask."""
    path = os.path.join(root, "engine-id")
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        new = str(uuid.uuid4()).upper()
        with open(path, "w") as f:
            f.write(new + "\n")
        return new


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cgroup() -> tuple[str, str]:
    """(driver, version): ``none`` while containers get no cgroup of their own."""
    v = "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"
    return "none", v


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def info(engine: Any) -> dict[str, Any]:
    """Docker's ``GET /info``."""
    recs = engine.containers.list(all=True)
    running = [r for r in recs if r["state"] == "running" and not r.get("paused")]
    paused = [r for r in recs if r["state"] == "running" and r.get("paused")]
    driver, cg_version = _cgroup()
    return {
        "ID": _engine_id(engine.root),
        "Containers": len(recs),
        "ContainersRunning": len(running),
        "ContainersPaused": len(paused),
        "ContainersStopped": len(recs) - len(running) - len(paused),
        "Images": len(engine.images.image_ids()),
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "overlayfs"]],
        "Plugins": {"Volume": ["local"], "Network": sorted(engine.controller.drivers()), "Log": ["file"]},
        "NetcorePlugins": engine.plugins(),  # each driver with its distribution and version (``netcore plugins``)
        "LoggingDriver": "file",
        "CgroupDriver": driver,
        "CgroupVersion": cg_version,
        "KernelVersion": os.uname().release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "DockerRootDir": engine.root,
        "Name": os.uname().nodename,
        "ServerVersion": _version(),
        "Debug": False,
    }


def version() -> dict[str, Any]:
    """Docker's ``GET /version``."""
    return {
        "Version": _version(),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": API_VERSION,
        "PythonVersion": platform.python_version(),
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": os.uname().release,
        "Components": [{"Name": "Engine", "Version": _version(), "Details": {"ApiVersion": API_VERSION, "Executable": sys.executable}}],
    }


def _unused_layers(images: Any) -> list[str]:
    """Layer dirs of the store that no image uses (left by builds whose images went)."""
    used = {images._layer_dir(d) for i in images.image_ids() for d in images._diff_ids(i)}
    try:
        return [p for p in (os.path.join(images.layers_dir, n) for n in os.listdir(images.layers_dir)) if p not in used and os.path.isdir(p)]
    except FileNotFoundError:
        return []


def _cache_entries(root: str) -> list[str]:
    d = os.path.join(root, "build", "cache")
    try:
        return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".json")]
    except FileNotFoundError:
        return []


def disk_usage(engine: Any) -> dict[str, Any]:
    """Docker's ``GET /system/df``."""
    recs = engine.containers.list(all=True)
    images = [i for i in engine.images.list() if not i.get("BuiltIn")]
    used_images = {r.get("image_id") for r in recs}
    containers = []
    for r in recs:
        containers.append({"Id": r["id"], "Names": ["/" + r["name"]], "Image": r.get("image") or "host", "ImageID": r.get("image_id") or "",
                           "State": r["state"], "SizeRw": dir_size(os.path.join(engine.containers.state_dir(r["id"]), "upper")),
                           "Created": r["created"]})
    volumes = []
    for v in engine.volumes.list():
        users = engine._volume_users(v["Name"])
        volumes.append({**v, "UsageData": {"Size": dir_size(v["Mountpoint"]), "RefCount": len(users)}})
    with engine.images.lock:
        unused = _unused_layers(engine.images)
    entries = _cache_entries(engine.root)
    cache_size = sum(dir_size(p) for p in unused) + sum(os.path.getsize(p) for p in entries)
    return {
        "LayersSize": sum(i["Size"] for i in images),
        "Images": [{**i, "SharedSize": 0, "Containers": sum(1 for r in recs if r.get("image_id") == i["Id"]),
                    "InUse": i["Id"] in used_images} for i in images],
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [{"ID": os.path.basename(p)[:-5], "Type": "regular", "Size": os.path.getsize(p), "InUse": False, "Shared": False}
                       for p in entries],
        "BuildCacheSize": cache_size,
    }


def prune_build_cache(engine: Any) -> tuple[list[str], int]:
    """Remove the build cache's entries and the layers no image uses; (ids, bytes freed)."""
    import shutil

    removed, space = [], 0
    with engine.images.lock:
        for p in _unused_layers(engine.images):
            space += dir_size(p)
            shutil.rmtree(p, ignore_errors=True)
            removed.append("sha256:" + os.path.basename(p))
        for p in _cache_entries(engine.root):
            space += os.path.getsize(p)
            os.unlink(p)
            removed.append(os.path.basename(p)[:-5])
    return removed, space


def prune_images(engine: Any) -> tuple[list[dict[str, str]], int]:
    """Dangling images (no name) that no container uses, or with ``all`` every unused one:
    Docker's ``image prune``; (deleted, bytes freed)."""
    return _prune_images(engine, dangling_only=True)


def _prune_images(engine: Any, dangling_only: bool) -> tuple[list[dict[str, str]], int]:
    recs = engine.containers.list(all=True)
    used = {r.get("image_id") for r in recs}
    out, space = [], 0
    for img in engine.images.list():
        if img.get("BuiltIn") or img["Id"] in used or (dangling_only and img["RepoTags"]):
            continue
        try:
            for ref in img["RepoTags"] or [img["Id"]]:
                out += engine.images.remove(ref if img["RepoTags"] else img["Id"], force=False)
            space += img["Size"]
        except Exception:  # used meanwhile: it stays
            continue
        for ref in img["RepoTags"]:
            engine.containers.events.publish("image", "untag", ref, name=ref)
        engine.containers.events.publish("image", "delete", img["Id"], name=(img["RepoTags"] or [img["Id"]])[0])
    return out, space


def prune_all_images(engine: Any) -> tuple[list[dict[str, str]], int]:
    """``image prune -a`` / ``system prune -a``: every image no container uses."""
    return _prune_images(engine, dangling_only=False)
