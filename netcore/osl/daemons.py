"""Supervising a helper daemon that the engine starts and that outlives the engine (BIRD).

The only process verbs a driver needs: start a program that daemonizes itself (its
exit status is its verdict on its config), find it again by its pid file after an
engine restart, and end it. Drivers call these, never ``subprocess``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from netcore.errors import KernelError

__all__ = ["spawn", "pid_from_file", "wait_until", "terminate", "gone"]


def spawn(argv: list[str], output: str, timeout: float = 15.0) -> None:
    """Run ``argv``, which forks its daemon and exits; a non-zero exit raises with its output.

    Its output goes to the file ``output`` (not a pipe, which the daemon would hold open),
    in a session of its own so that it never shares the engine's terminal or signals.
    """
    name = os.path.basename(argv[0])
    with open(output, "w+") as out:
        try:
            res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KernelError(name, "start", str(exc)) from None
        if res.returncode != 0:
            out.seek(0)
            raise KernelError(name, "start", out.read().strip() or res.returncode)


def pid_from_file(pidfile: str, program: str, argument: str) -> int | None:
    """The pid in ``pidfile`` if that process runs ``program`` with ``argument`` on its command line."""
    try:
        pid = int(Path(pidfile).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if argument.encode() in cmdline and os.path.basename(cmdline[0]) == program.encode() else None


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until it holds; raise ``KernelError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise KernelError(what.split()[0], "start", f"{what} after {timeout:g} s")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (reaping it if it is our child)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not os.path.exists(f"/proc/{pid}")


def terminate(pid: int, timeout: float = 10.0, asked: bool = False) -> None:
    """End ``pid``: SIGTERM (unless it was already ``asked`` another way), SIGKILL after ``timeout``."""
    if not asked:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if not gone(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while not gone(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.02)
