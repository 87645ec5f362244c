"""Finding the container processes an engine started, from /proc, and stopping stray ones.

The store can lag the processes: an engine killed between starting a container's
monitor and recording it leaves a process that no record names. At start the engine
therefore looks at the processes themselves: every monitor carries its container's
state dir (``<root>/containers/<id>``) right after the ``netcore-init`` marker in its
argv (see ``launch.prefix``), so the monitors of this root, and the container
id of each, are found whatever the store says. Each is then adopted or stopped
(``Containers.adopt``).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from dataclasses import dataclass

from runtime.engine import pidfd

__all__ = ["Monitor", "find", "stop"]

log = logging.getLogger("netcore.containers")
MARKER = b"netcore-init"  # = launch.MARKER: $0 of the monitor shell's script (``sh -c SCRIPT netcore-init STATE_DIR ...``)


@dataclass(frozen=True)
class Monitor:
    container_id: str
    pid: int
    start: int  # clock ticks since boot, /proc/<pid>/stat field 22: guards against pid reuse
    pid1: int | None  # the container's pid 1 (host pid), once forked
    pid1_start: int = 0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start ticks) of a live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[1]), int(rest[19])


def _state_dir(cmdline: bytes) -> str | None:
    args = cmdline.split(b"\0")
    try:
        i = args.index(MARKER)
    except ValueError:
        return None
    return args[i + 1].decode(errors="replace") if i + 1 < len(args) else None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def find(containers_dir: str) -> dict[str, list[Monitor]]:
    """Container id -> the live monitors whose state dir is in ``containers_dir``."""
    prefix = os.path.abspath(containers_dir).rstrip("/") + "/"
    hits: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if MARKER not in cmdline:
            continue
        sdir = _state_dir(cmdline)
        if sdir and sdir.startswith(prefix) and "/" not in sdir[len(prefix):].rstrip("/"):
            hits[int(entry)] = sdir[len(prefix):].rstrip("/")
    out: dict[str, list[Monitor]] = {}
    for pid, cid in hits.items():
        st = _stat(pid)
        if st is None or st[0] in hits:  # gone, or the pid-1 subshell before its exec: not a monitor
            continue
        kids = _children(pid)
        pid1 = kids[0] if kids else None
        grandchildren = _children(pid1) if pid1 else []
        if grandchildren:  # the monitor's child is bwrap; the container's pid 1 is bwrap's child (launch.py)
            pid1 = grandchildren[0]
        pid1_start = (_stat(pid1) or (0, 0))[1] if pid1 else 0
        out.setdefault(cid, []).append(Monitor(cid, pid, st[1], pid1, pid1_start))
    return out


def stop(mon: Monitor, timeout: float = 5.0) -> bool:
    """SIGKILL the container's pid 1 (its whole pid namespace goes) and the monitor's
    process group; True once the monitor is gone."""
    fds = [fd for fd in (pidfd.pidfd(mon.pid1, mon.pid1_start) if mon.pid1 else None, pidfd.pidfd(mon.pid, mon.start)) if fd is not None]
    try:
        for fd in fds:
            try:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        st = _stat(mon.pid)
        if st is not None and st[1] == mon.start:
            try:
                os.killpg(mon.pid, signal.SIGKILL)  # anything else the monitor forked (it leads its session)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for fd in fds:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(max(0.0, deadline - time.monotonic()) * 1000):
                return False
        return True
    finally:
        for fd in fds:
            os.close(fd)
