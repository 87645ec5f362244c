"""Starting an engine on demand: only for the default socket, once, and never when told not to.

A first ``netcore`` command just works: if nothing answers on the default socket,
the client starts ``netcore daemon`` in the background and waits for it. It never
does so for a socket named with ``-H`` or ``NETCORE_HOST`` (that engine is someone
else's to start, with its own root), nor with ``NETCORE_NO_AUTOSTART=1``. Clients
that find no engine at the same moment take turns on a lock file next to the socket:
the first starts the engine, the others find it answering (eight commands at once
start one engine, not eight). The engine's own lock on its root and socket
(``runtime.engine.rootdir``) would refuse a second one anyway; this lock keeps it
from being tried. Imported only when no engine answered: it costs the common path nothing.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import subprocess
import sys
import time

from runtime.api.client import DEFAULT_SOCKET, ApiError

__all__ = ["ensure_engine", "may_autostart", "start_once"]

START_TIMEOUT = 30.0


def may_autostart(path: str, allowed: bool = True) -> bool:
    """Whether a client may start an engine for the socket at ``path``."""
    if not allowed or os.environ.get("NETCORE_NO_AUTOSTART", "") not in ("", "0"):
        return False
    return os.path.abspath(path) == DEFAULT_SOCKET


def _answers(path: str) -> bool:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _how(path: str, root: str) -> str:
    if os.path.abspath(path) == DEFAULT_SOCKET:
        return "netcore daemon"
    return f"netcore daemon --socket {path} --root {root}"


def ensure_engine(path: str, root: str, allowed: bool = True) -> None:
    """Make an engine answer on ``path`` (starting one if this client may), or raise one line."""
    if not may_autostart(path, allowed):
        why = " (NETCORE_NO_AUTOSTART is set)" if allowed and os.environ.get("NETCORE_NO_AUTOSTART", "") not in ("", "0") else ""
        raise ApiError(0, f"cannot connect to the netcore engine at unix://{path}: is the engine running?{why} "
                          f"Start one with: {_how(path, root)}")
    start_once(path, root)


def start_once(path: str, root: str) -> None:
    """Start an engine on ``path`` unless one answers; clients doing so at once take turns."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lock = os.open(path + ".start", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # blocking flock would not time out: poll
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if _answers(path):  # another client's engine is up
                    return
                if time.monotonic() > deadline:
                    raise ApiError(0, f"another client is starting the netcore engine at unix://{path} and it does not answer; see {root}/engine.log")
                time.sleep(0.02)
        if _answers(path):
            return
        _start(path, root)
    finally:
        os.close(lock)  # drops the lock


def _start(path: str, root: str) -> None:
    os.makedirs(root, mode=0o700, exist_ok=True)
    log_path = os.path.join(root, "engine.log")
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    offset = os.fstat(log).st_size
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "daemon", "--root", root, "--socket", path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )
    finally:
        os.close(log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(path):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    why = lines[-1] if lines else "it did not answer"
    raise ApiError(0, f"the netcore engine did not start ({why}); see {log_path}")
