"""A container's stdin and terminal on the engine's side (``-i``, ``-t``).

With ``-t`` the container runs on a pseudo-terminal. Its monitor (see ``launch.MONITOR``)
holds the master for the container's whole life, as conmon does for podman, so a detached
``-dit`` container keeps its terminal when the engine dies; the engine works on its own
copy of the master (taken back from the monitor with ``pidfd_getfd`` after a restart). A
pump thread copies what the terminal prints to the container's log (as stdout records,
``logstore``: a terminal has one stream, as in Docker), where ``logs`` and attached
clients read it; what clients type is written to the master, so Ctrl-C is the
line discipline's SIGINT to the container's foreground process group. While no engine
runs nobody reads the terminal: once its buffer is full the container blocks on output
until an engine is back.

With ``-i`` and no terminal, stdin is a pipe whose write end only the engine holds: a
client closing its stdin closes the container's (``StdinOnce``), and so does an engine
exit. Output goes to the log through the FIFOs of ``logpump``, as for every container.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import struct
import termios
import threading
from collections.abc import Callable

from runtime.engine import launch, logstore, pidfd, process

__all__ = ["Stdio", "pidfd_getfd"]

log = logging.getLogger("netcore.stdio")
_SYS_PIDFD_GETFD = 438  # the same number on every architecture (asm-generic)
_libc = ctypes.CDLL(None, use_errno=True)


def pidfd_getfd(pid: int, start_ticks: int, fd: int) -> int | None:
    """A copy of descriptor ``fd`` of process ``pid`` (if it is still the one that started at
    ``start_ticks``); None if it is gone. Python 3.11 has no ``os.pidfd_getfd``."""
    handle = pidfd.pidfd(pid, start_ticks)
    if handle is None:
        return None
    try:
        got = _libc.syscall(_SYS_PIDFD_GETFD, handle, fd, 0)
        if got < 0:
            log.warning("pidfd_getfd(%d, %d): %s", pid, fd, os.strerror(ctypes.get_errno()))
            return None
        os.set_inheritable(got, False)
        return got
    finally:
        os.close(handle)


class Stdio:
    """One run's stdin and terminal: made by ``prepare``, handed to the launcher, then
    ``started`` (or ``adopt``-ed after an engine restart) and ``close``-d after the exit."""

    def __init__(self, tty: bool, open_stdin: bool, log_path: str, notify: Callable[[], None]) -> None:
        self.tty, self.open_stdin = tty, open_stdin
        self.log_path = log_path
        self._notify = notify
        self._lock = threading.Lock()
        self._master: int | None = None  # tty: the engine's copy of the master
        self._slave: int | None = None  # tty: held until pid 1 has opened its own
        self._stdin_r: int | None = None  # -i: the read end, until handed over
        self._stdin_w: int | None = None  # -i: the write end, the engine's only
        self._pump: threading.Thread | None = None

    # --------------------------------------------------------- lifecycle ----

    def prepare(self, out: int | None = None, err: int | None = None) -> dict[str, object]:
        """The ``ProcessSpec`` fields for this run (``stdio``, ``tty``): with a terminal, the
        master for the monitor to keep and the slave for the container; else the stdin pipe
        with ``out`` and ``err`` (the log's FIFOs)."""
        if self.tty:
            self._master, self._slave = os.openpty()
            for fd in (self._master, self._slave):
                os.set_inheritable(fd, False)
            return {"stdio": (self._master, self._slave, self._slave), "tty": True}
        if self.open_stdin:
            self._stdin_r, self._stdin_w = os.pipe2(os.O_CLOEXEC)
            return {"stdio": (self._stdin_r, out, err)}
        return {}

    def started(self) -> None:
        """Pid 1 holds its ends now: drop the engine's and start copying the terminal out."""
        for name in ("_slave", "_stdin_r"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        self._start_pump()

    def adopt(self, info: process.ProcessInfo) -> bool:
        """After an engine restart: take the master back from the monitor. False if the
        monitor is gone (the container exited meanwhile)."""
        if not self.tty:
            return True  # a stdin pipe does not survive its engine: the container saw EOF
        fd = pidfd_getfd(info.monitor_pid, info.monitor_start, launch.TTY_MASTER_FD)
        if fd is None:
            return False
        self._master = fd
        self._start_pump()
        return True

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until the terminal's last output is in the log (called once the container exited)."""
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(timeout)

    def close(self) -> None:
        with self._lock:
            for name in ("_slave", "_stdin_r", "_stdin_w"):
                fd = getattr(self, name)
                if fd is not None:
                    os.close(fd)
                    setattr(self, name, None)
            if self._pump is None and self._master is not None:
                os.close(self._master)
                self._master = None

    # --------------------------------------------------------- clients -----

    def write(self, data: bytes) -> bool:
        """What an attached client typed; False once the container's stdin is closed."""
        with self._lock:
            fd = self._master if self.tty else self._stdin_w
            if fd is None:
                return False
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                return False
            return True

    def close_stdin(self) -> None:
        """The attached client's stdin ended (``StdinOnce``): the container reads EOF."""
        with self._lock:
            if self._stdin_w is not None:
                os.close(self._stdin_w)
                self._stdin_w = None

    def resize(self, height: int, width: int) -> None:
        """The client's terminal size; the kernel tells the foreground process (SIGWINCH)."""
        with self._lock:
            if self._master is not None:
                fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    # --------------------------------------------------------- the pump ----

    def _start_pump(self) -> None:
        if self._master is not None:
            self._pump = threading.Thread(target=self._copy_out, name="tty-pump", daemon=True)
            self._pump.start()

    def _copy_out(self) -> None:
        """Terminal output -> log until the last slave closes (EIO: the container exited)."""
        out = logstore.Writer(self.log_path)
        try:
            while True:
                try:
                    chunk = os.read(self._master, 65536)  # type: ignore[arg-type]
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        log.warning("terminal of %s: %s", self.log_path, exc)
                    break
                if not chunk:
                    break
                out.write(logstore.STDOUT, chunk)
                self._notify()
        finally:
            out.close()
            with self._lock:
                if self._master is not None:
                    os.close(self._master)
                    self._master = None
            self._notify()
