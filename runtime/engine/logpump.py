"""Copies the stdout and stderr of containers without a terminal into their logs, apart.

Each run gets two FIFOs in its state dir (``stdout.fifo``, ``stderr.fifo``): the
container writes to them, one engine thread (one epoll for every container) reads
them and appends records (``logstore``) with the stream and the time. FIFOs rather
than pipes so that the next engine finds them by path after a restart; the monitor
keeps a read end of each open for the container's life (``launch.MONITOR``), so a
container never gets SIGPIPE while no engine runs: its output waits in the FIFO
(64 KiB; then it blocks, as a container with a terminal does) until an engine is back.
The engine opens its ends read-write, so a FIFO never reads as ended: ``close``
drains it once the container has exited.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
from collections.abc import Callable

from runtime.engine.logstore import STDERR, STDOUT, Writer

__all__ = ["LogPump", "FIFOS"]

log = logging.getLogger("netcore.logs")
FIFOS = ("stdout.fifo", "stderr.fifo")
_CHUNK = 65536


class _Run:
    def __init__(self, writer: Writer, fds: dict[int, int]) -> None:
        self.writer, self.fds = writer, fds  # fd -> stream


class LogPump:
    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._owner: dict[int, str] = {}  # fd -> container id
        self._ep = select.epoll()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------ runs -------

    def open(self, cid: str, state_dir: str, log_path: str) -> tuple[int, int]:
        """New FIFOs for a run: the write ends for the container's stdout and stderr (the
        caller closes them once the process holds them)."""
        for name in FIFOS:
            path = os.path.join(state_dir, name)
            if os.path.lexists(path):
                os.unlink(path)
            os.mkfifo(path, 0o600)
        self._register(cid, state_dir, log_path)
        try:
            return tuple(os.open(os.path.join(state_dir, n), os.O_WRONLY | os.O_CLOEXEC) for n in FIFOS)  # type: ignore[return-value]
        except OSError:
            self.close(cid, state_dir)
            raise

    def adopt(self, cid: str, state_dir: str, log_path: str) -> bool:
        """After an engine restart: read a running container's FIFOs again. False if it has none."""
        if not all(stat.S_ISFIFO(_mode(os.path.join(state_dir, n))) for n in FIFOS):
            return False
        self._register(cid, state_dir, log_path)
        return True

    def _register(self, cid: str, state_dir: str, log_path: str) -> None:
        fds = {os.open(os.path.join(state_dir, n), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC): s for n, s in zip(FIFOS, (STDOUT, STDERR))}
        with self._lock:
            old = self._runs.pop(cid, None)
            if old is not None:
                self._forget(old)
            self._runs[cid] = _Run(Writer(log_path), fds)
            for fd in fds:
                self._owner[fd] = cid
                self._ep.register(fd, select.EPOLLIN)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="log-pump", daemon=True)
                self._thread.start()

    def drain(self, cid: str) -> None:
        """Copy what waits in the run's FIFOs to its log now."""
        with self._lock:
            run = self._runs.get(cid)
            if run is not None:
                for fd in run.fds:
                    while self._copy(run, fd):
                        pass
        self._notify()

    def close(self, cid: str, state_dir: str | None = None) -> None:
        """The run is over: its last output to the log, its FIFOs closed (and removed)."""
        self.drain(cid)
        with self._lock:
            run = self._runs.pop(cid, None)
            if run is not None:
                self._forget(run)
        if state_dir is not None:
            for name in FIFOS:
                try:
                    os.unlink(os.path.join(state_dir, name))
                except FileNotFoundError:
                    pass

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for run in self._runs.values():
                self._forget(run)
            self._runs.clear()
        self._ep.close()

    # ------------------------------------------------------------ copying ----

    def _forget(self, run: _Run) -> None:
        for fd in run.fds:
            self._owner.pop(fd, None)
            try:
                self._ep.unregister(fd)
            except (OSError, ValueError):
                pass
            os.close(fd)
        run.writer.close()

    def _copy(self, run: _Run, fd: int) -> bool:
        """One read of ``fd`` into the log (lock held); False when nothing was waiting."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                log.warning("log of %s: %s", run.writer.path, exc)
            return False
        if not data:
            return False
        try:
            run.writer.write(run.fds[fd], data)
        except OSError as exc:  # e.g. the container's dir went with an rm
            log.warning("log %s: %s", run.writer.path, exc)
        return True

    def _loop(self) -> None:
        while True:
            try:
                events = self._ep.poll(1.0)
            except (OSError, ValueError):
                return  # shut down
            copied = False
            with self._lock:
                if self._closed:
                    return
                for fd, _ in events:
                    cid = self._owner.get(fd)
                    run = self._runs.get(cid) if cid is not None else None
                    if run is not None and fd in run.fds:
                        copied = self._copy(run, fd) or copied
            if copied:
                self._notify()


def _mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0
