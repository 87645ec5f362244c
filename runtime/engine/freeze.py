"""``pause`` / ``unpause``: every process of a container stopped, then let go.

A container with a freezer cgroup of its own (v1 ``freezer.state``, v2 ``cgroup.freeze``)
is frozen there, as Docker does, and its processes never see it. Containers here have no
cgroup of their own unless the host allows one (``-m``/``--cpus``); then every process of
the container's pid namespace gets SIGSTOP (again until none is left running: a process
may fork meanwhile) and SIGCONT to resume. A stopped process can still be killed, so
stop/kill/rm of a paused container thaw it first and then signal, as Docker does.
"""

from __future__ import annotations

import os
import signal
import time

__all__ = ["pids", "freeze", "thaw", "cgroup_dir", "FreezeError"]

CGROUP = "/sys/fs/cgroup"


class FreezeError(Exception):
    """The container's processes could not all be stopped."""


def _ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pids(pid1: int) -> list[int]:
    """Host pids of every process in the pid namespace of ``pid1`` (the container's pid 1), pid 1 first."""
    ns = _ns(pid1)
    if ns is None or ns == _ns("self"):  # never the engine's own namespace
        return []
    out = [pid1]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid1 and _ns(entry) == ns:
            out.append(int(entry))
    return out


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return "X"


def cgroup_dir(pid: int) -> str | None:
    """The freezer of ``pid``'s own cgroup (v1 freezer or v2), if it is not the engine's."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            mine = {line.split(":", 2)[1]: line.split(":", 2)[2].strip() for line in f}
        with open("/proc/self/cgroup") as f:
            engine = {line.split(":", 2)[1]: line.split(":", 2)[2].strip() for line in f}
    except (OSError, IndexError):
        return None
    if mine.get("freezer") not in (None, engine.get("freezer"), "/"):
        path = f"{CGROUP}/freezer{mine['freezer']}"
        if os.path.exists(f"{path}/freezer.state"):
            return path
    if mine.get("") not in (None, engine.get(""), "/"):
        for base in (CGROUP, f"{CGROUP}/unified"):
            path = f"{base}{mine['']}"
            if os.path.exists(f"{path}/cgroup.freeze"):
                return path
    return None


def _cgroup_set(path: str, frozen: bool) -> None:
    if os.path.exists(f"{path}/freezer.state"):
        with open(f"{path}/freezer.state", "w") as f:
            f.write("FROZEN" if frozen else "THAWED")
    else:
        with open(f"{path}/cgroup.freeze", "w") as f:
            f.write("1" if frozen else "0")


def freeze(pid1: int) -> str:
    """Stop every process of the container; returns how (``freezer`` or ``signal``)."""
    path = cgroup_dir(pid1)
    if path is not None:
        _cgroup_set(path, True)
        return "freezer"
    deadline = time.monotonic() + 5.0
    while True:
        running = [p for p in pids(pid1) if _state(p) not in ("T", "t", "Z", "X")]
        if not running:
            return "signal"
        if time.monotonic() > deadline:
            thaw(pid1)
            raise FreezeError(f"{len(running)} processes of the container did not stop")
        for p in running:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        time.sleep(0.002)


def thaw(pid1: int) -> None:
    """Resume every process of the container (a freezer thawed, or SIGCONT to each)."""
    path = cgroup_dir(pid1)
    if path is not None:
        _cgroup_set(path, False)
        return
    for p in pids(pid1):
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass
