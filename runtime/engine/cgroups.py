"""Resource limits of a container (``-m/--memory``, ``--cpus``) as cgroups.

A container with a limit gets its own cgroup in each controller it needs: with cgroup
v1 under the engine's own cgroup (``<engine's>/netcore/<id>``), so that whatever limits
the engine's host gives the engine still hold for its containers; with v2 under the
root (``/sys/fs/cgroup/netcore/<id>``, as Docker's cgroupfs driver), since v2 lets no
cgroup that holds a process (the engine's) hand controllers to children. The monitor shell joins them
before it runs bwrap (``launch.MONITOR``: ``NETCORE_CGROUPS`` lists their
``cgroup.procs``), so pid 1 and everything under it is inside from its first
instruction. Both layouts are handled: cgroup v2 (``memory.max``, ``cpu.max``) and v1
(``memory.limit_in_bytes``, ``cpu.cfs_quota_us``), as found in /proc/self/mounts; a
controller that this machine does not mount is refused with Docker's words.

Docker's defaults are kept: swap is limited to the memory limit again (``memory-swap``
twice ``memory``), and the CPU period is 100 ms.
"""

from __future__ import annotations

import errno
import os
import time

__all__ = ["Unsupported", "paths", "prepare", "remove", "oom_killed", "CFS_PERIOD"]

CFS_PERIOD = 100_000  # microseconds: Docker's
_BASE = "netcore"


class Unsupported(ValueError):
    """The machine's cgroup layout has no controller for a limit: one line for the user."""


def _mounts() -> tuple[str | None, dict[str, str]]:
    """(the cgroup v2 mount, {v1 controller: its mount})."""
    v2, v1 = None, {}
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                dev, path, kind, opts, *_ = line.split()
                if kind == "cgroup2" and v2 is None:
                    v2 = path
                elif kind == "cgroup":
                    for o in opts.split(","):
                        if o in ("memory", "cpu"):
                            v1[o] = path
    except OSError:
        pass
    return v2, v1


def _own(controller: str) -> str:
    """The engine's cgroup path in the hierarchy of ``controller`` ("" for v2)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if controller in ctrls.split(",") if controller else ctrls == "":
                    return path.rstrip("/")
    except OSError:
        pass
    return ""


def _v2_has(mount: str, controller: str) -> bool:
    try:
        with open(os.path.join(mount, "cgroup.controllers")) as f:
            return controller in f.read().split()
    except OSError:
        return False


def paths(cid: str, memory: int | None, nano_cpus: int | None) -> dict[str, str]:
    """The cgroup dirs a container's limits need: {"memory"|"cpu"|"unified": dir}.
    Raises ``Unsupported`` if this machine cannot apply one of them."""
    wanted = [c for c, v in (("memory", memory), ("cpu", nano_cpus)) if v]
    if not wanted:
        return {}
    v2, v1 = _mounts()
    out: dict[str, str] = {}
    for c in wanted:
        if c in v1:
            out[c] = os.path.join(v1[c] + _own(c), _BASE, cid)
        elif v2 and _v2_has(v2, c):
            out["unified"] = os.path.join(v2, _BASE, cid)
        else:
            what = "memory limit" if c == "memory" else "CPU CFS scheduler"
            raise Unsupported(f"Your kernel does not support {what}: no {c} cgroup controller is mounted")
    return out


def _mkdir(d: str) -> None:
    """The container's cgroup; its parent may vanish meanwhile (another engine of this cgroup
    removed it empty, see ``remove``): made again then."""
    for _ in range(3):
        try:
            os.makedirs(d, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    os.makedirs(d, exist_ok=True)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def prepare(cid: str, memory: int | None, nano_cpus: int | None) -> list[str]:
    """Make the container's cgroups with its limits; the ``cgroup.procs`` files to join.
    Undone (``remove``) if any write fails."""
    dirs = paths(cid, memory, nano_cpus)
    try:
        for kind, d in dirs.items():
            if kind == "unified":
                parent = os.path.dirname(d)
                os.makedirs(parent, exist_ok=True)
                ctrls = " ".join(f"+{c}" for c, v in (("memory", memory), ("cpu", nano_cpus)) if v)
                for p in (os.path.dirname(parent), parent):  # the controllers reach the container's cgroup
                    _write(os.path.join(p, "cgroup.subtree_control"), ctrls)
            _mkdir(d)
            if kind in ("memory", "unified") and memory:
                if kind == "memory":
                    _write(os.path.join(d, "memory.limit_in_bytes"), str(memory))
                    if os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
                        _write(os.path.join(d, "memory.memsw.limit_in_bytes"), str(2 * memory))
                else:
                    _write(os.path.join(d, "memory.max"), str(memory))
                    if os.path.exists(os.path.join(d, "memory.swap.max")):
                        _write(os.path.join(d, "memory.swap.max"), str(memory))
            if kind in ("cpu", "unified") and nano_cpus:
                quota = max(1000, nano_cpus * CFS_PERIOD // 1_000_000_000)
                if kind == "cpu":
                    _write(os.path.join(d, "cpu.cfs_period_us"), str(CFS_PERIOD))
                    _write(os.path.join(d, "cpu.cfs_quota_us"), str(quota))
                else:
                    _write(os.path.join(d, "cpu.max"), f"{quota} {CFS_PERIOD}")
    except OSError as exc:
        remove(cid, memory, nano_cpus)
        raise Unsupported(f"cannot set the container's resource limits: {exc.strerror}: {exc.filename}") from None
    return [os.path.join(d, "cgroup.procs") for d in dict.fromkeys(dirs.values())]


def oom_killed(cid: str, memory: int | None) -> bool:
    """The kernel killed a process of the container for its memory limit (inspect's
    ``State.OOMKilled``): the ``oom_kill`` count of v1's memory.oom_control or v2's memory.events."""
    if not memory:
        return False
    try:
        dirs = paths(cid, memory, None)
    except Unsupported:
        return False
    for kind, d in dirs.items():
        name = "memory.oom_control" if kind == "memory" else "memory.events"
        try:
            with open(os.path.join(d, name)) as f:
                counts = dict(line.split()[:2] for line in f if len(line.split()) >= 2)
        except OSError:
            continue
        if int(counts.get("oom_kill", "0")) > 0:
            return True
    return False


def remove(cid: str, memory: int | None, nano_cpus: int | None, timeout: float = 2.0) -> None:
    """Remove the container's cgroups once their processes are gone (they may still be
    exiting when the monitor's exit is seen)."""
    try:
        dirs = paths(cid, memory, nano_cpus)
    except Unsupported:
        return
    deadline = time.monotonic() + timeout
    for d in dict.fromkeys(dirs.values()):
        while True:
            try:
                os.rmdir(d)
                try:
                    os.rmdir(os.path.dirname(d))  # ``netcore`` too, once no container has a cgroup there
                except OSError:
                    pass
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
