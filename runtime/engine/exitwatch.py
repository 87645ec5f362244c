"""The exit watcher: one thread, one epoll, one pidfd per container monitor."""

from __future__ import annotations

import logging
import os
import selectors
import threading
from collections import deque
from typing import Callable

from runtime.engine import pidfd
from runtime.engine.process import ProcessError, ProcessInfo, read_exit_code

__all__ = ["ExitWatcher"]

log = logging.getLogger(__name__)


class ExitWatcher:
    """One thread, one epoll, one pidfd per monitor: ``callback(container_id, exit_code)``
    fires once per watch, from the watcher thread (None if no code was recorded)."""

    def __init__(self, callback: Callable[[str, int | None], None]) -> None:
        self._callback = callback
        self._sel = selectors.DefaultSelector()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._sel.register(self._wake, selectors.EVENT_READ, None)
        self._ops: deque[tuple] = deque()  # (op, container_id, pidfd, info, state_dir)
        self._lock = threading.Lock()
        self._closed = False
        self._watches: dict[str, tuple[int | None, ProcessInfo, str]] = {}  # loop thread only
        self._thread = threading.Thread(target=self._run, name="exit-watcher", daemon=True)
        self._thread.start()

    def _post(self, *op) -> None:
        with self._lock:
            if self._closed:
                if op[0] == "watch" and op[2] is not None:
                    os.close(op[2])
                raise ProcessError("ExitWatcher is closed")
            self._ops.append(op)
            self._closed = op[0] == "close"
            os.eventfd_write(self._wake, 1)

    def watch(self, container_id: str, info: ProcessInfo, state_dir: str) -> None:
        # A monitor that is already gone gets no pidfd and fires on the next loop turn.
        fd = pidfd.pidfd(info.monitor_pid, info.monitor_start)
        self._post("watch", container_id, None if fd is None else pidfd.above_select_range(fd), info, state_dir)

    def unwatch(self, container_id: str) -> None:
        self._post("unwatch", container_id)

    def close(self) -> None:
        try:
            self._post("close", None)
        except ProcessError:
            return
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _drop(self, cid: str | None) -> None:
        fd = self._watches.pop(cid, (None,))[0]
        if fd is not None:
            self._sel.unregister(fd)
            os.close(fd)

    def _fire(self, cid: str) -> None:
        fd, info, state_dir = self._watches[cid]
        if fd is not None:
            pidfd.reap(fd)
        self._drop(cid)
        try:
            self._callback(cid, read_exit_code(state_dir))
        except Exception:
            log.exception("exit callback for %s failed", cid)

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select():
                if key.data is not None:  # a monitor exited (skip if dropped meanwhile)
                    if self._watches.get(key.data, (None,))[0] == key.fd:
                        self._fire(key.data)
                    continue
                os.eventfd_read(self._wake)
                while True:
                    with self._lock:
                        if not self._ops:
                            break
                        op, cid, *rest = self._ops.popleft()
                    self._drop(cid)
                    if op == "close":
                        for c in list(self._watches):
                            self._drop(c)
                        self._sel.close()
                        os.close(self._wake)
                        return
                    if op == "watch":
                        self._watches[cid] = (rest[0], rest[1], rest[2])
                        if rest[0] is None:
                            self._fire(cid)
                        else:
                            self._sel.register(rest[0], selectors.EVENT_READ, cid)
