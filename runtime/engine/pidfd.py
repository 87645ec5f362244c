"""Processes by pidfd: start-time checks against pid reuse, waits without select(), reaping."""

from __future__ import annotations

import fcntl
import os
import select

__all__ = ["FD_SETSIZE", "parse_stat", "stat", "pidfd", "wait_fd", "above_select_range", "reap"]

FD_SETSIZE = 1024


def parse_stat(data: bytes) -> tuple[int, str, int]:
    """(pid, state, start ticks) from a /proc/<pid>/stat line (comm may contain spaces)."""
    rest = data[data.rindex(b")") + 2:].split()
    return int(data.split(None, 1)[0]), rest[0].decode(), int(rest[19])


def stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks) of ``pid``, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())[1:]
    except (OSError, ValueError, IndexError):
        return None


def pidfd(pid: int, start_ticks: int) -> int | None:
    """A pidfd for ``pid`` if it is (still) the process that started at ``start_ticks``."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    st = stat(pid)  # checked after opening, so a match pins the fd to the right process
    if st is None or (start_ticks and st[1] != start_ticks):
        os.close(fd)
        return None
    return fd


def wait_fd(fd: int, timeout: float) -> bool:
    """Readable within ``timeout`` (poll, not select: fds may exceed FD_SETSIZE)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(timeout, 0) * 1000))


def above_select_range(fd: int) -> int:
    """``fd`` moved to a descriptor >= FD_SETSIZE (1024) if the limit allows, else as is.

    The watcher holds one pidfd per container for the container's life: on the lowest
    free descriptors they would push the engine's short-lived ones past 1023, where a
    library that still uses ``select()`` (libnftables) aborts the process.
    """
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, FD_SETSIZE)
    except OSError:  # RLIMIT_NOFILE at or below FD_SETSIZE
        return fd
    os.close(fd)
    return high


def reap(fd: int) -> None:
    """Collect an exited monitor if it is our child (or adopted by us as subreaper)."""
    try:
        os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass
