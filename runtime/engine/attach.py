"""Attached clients (Docker's ``POST /containers/{id}/attach``, a hijacked connection).

A client attaches to one run of a container: the one in progress, or the next one if it
is not running (``run -it`` and ``start -a`` attach before they start it, so no output is
missed). It gets the run's output as the log receives it, from where the log was when it
attached (all of it with ``logs=1``), until the run ends. With ``stdin=1`` what it sends
goes to the container's stdin or terminal; its end of input closes a ``StdinOnce``
container's stdin. Ctrl-P Ctrl-Q on a terminal detaches, as Docker's default detach keys.

Output of a container without a terminal is framed as Docker's multiplexed stream (an
8-byte header: stream, 0, 0, 0, big-endian length), each record of the log
(``logstore``) in a frame of its own stream. With a terminal it is the raw bytes.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from typing import Any

from runtime.api.server import Hijack
from runtime.engine import logstore
from runtime.engine.containers import Containers

__all__ = ["attach", "RAW", "MULTIPLEXED"]

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
DETACH = b"\x10\x11"  # ctrl-p ctrl-q


def attach(containers: Containers, ref: str, query: dict[str, Any]) -> Hijack:
    """Resolve the container now (an unknown one is a 404 before the upgrade), then hand the
    connection to a session."""
    flag = lambda key: bool(query.get(key))  # noqa: E731  (schemas.AttachQuery: booleans)
    with containers.lock:
        rec = containers.get(ref)
        cid, _ = containers.log_path(rec["id"])
        starts, _exits, failed = containers.runs(cid)
        target = starts if rec["state"] == "running" else starts + 1
        path = containers.log_path(cid)[1]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log = open(path, "ab+")  # held by the session: an auto-removed container's files may go before it reads them
        offset = 0 if flag("logs") else log.seek(0, 2)
    containers.attached(rec)
    session = _Session(containers, cid, target, failed, log, offset, tty=bool(rec.get("tty")),
                       stdin=flag("stdin") and bool(rec.get("open_stdin")), stdin_once=bool(rec.get("stdin_once")),
                       stdout=flag("stdout") or flag("stderr"))
    return Hijack(session.run, RAW if rec.get("tty") else MULTIPLEXED)


class _Session:
    def __init__(self, containers: Containers, cid: str, target: int, failed: int, log: Any, offset: int,
                 tty: bool, stdin: bool, stdin_once: bool, stdout: bool) -> None:
        self.ctr, self.cid, self.target, self.failed = containers, cid, target, failed
        self.log, self.offset = log, offset
        self.tty, self.stdin, self.stdin_once, self.stdout = tty, stdin, stdin_once, stdout
        self.detached = threading.Event()

    # ------------------------------------------------------------ run state --

    def _over(self) -> bool:
        """The run this session follows has ended, or will not come (its start failed, the
        container is gone)."""
        starts, exits, failed = self.ctr.runs(self.cid)
        return exits >= self.target or (starts < self.target and failed > self.failed) or self.ctr.gone(self.cid)

    def _started(self) -> bool:
        return self.ctr.runs(self.cid)[0] >= self.target

    def _wait(self, timeout: float) -> None:
        with self.ctr.output:
            self.ctr.output.wait(timeout)

    # ------------------------------------------------------------ session ----

    def run(self, rfile: Any, sock: socket.socket) -> None:
        reader = None
        if self.stdin:
            reader = threading.Thread(target=self._copy_in, args=(rfile,), name="attach-stdin", daemon=True)
            reader.start()
        try:
            self._copy_out(sock)
        except OSError:
            pass  # the client left
        finally:
            self.log.close()
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the stdin reader
            except OSError:
                pass
            if reader is not None:
                reader.join(5.0)

    def _copy_out(self, sock: socket.socket) -> None:
        hangup = select.poll()
        hangup.register(sock, select.POLLHUP)  # the client closed both ways (its end of input alone is RDHUP)
        gone = lambda: bool(hangup.poll(0))  # noqa: E731
        while not self._started():
            if self._over() or self.detached.is_set() or gone():
                return  # e.g. ``start -a`` whose start failed: the client left
            self._wait(0.05)
        if not self.stdout:
            while not self._over() and not self.detached.is_set() and not gone():
                self._wait(0.2)
            return
        f = self.log
        f.seek(self.offset)
        partial = bytearray()
        while not self.detached.is_set():
            over = self._over()  # before the read: what was written before the end is sent
            out = logstore.render(logstore.records(f, partial), multiplexed=not self.tty)
            if out:
                sock.sendall(out)
                continue
            if over or gone():
                return
            self._wait(0.02)

    def _copy_in(self, rfile: Any) -> None:
        """Client -> the container's stdin or terminal, for the run this session follows."""
        held = b""  # a ctrl-p waiting for its ctrl-q
        while True:
            try:
                data = rfile.read1(65536)
            except (OSError, ValueError):
                return
            if not data:
                break
            if self.tty:
                data = held + data
                held = b""
                if DETACH in data:
                    self._write(data[: data.index(DETACH)])
                    self.detached.set()
                    self.ctr.notify_output()
                    return
                if data.endswith(DETACH[:1]):
                    data, held = data[:-1], DETACH[:1]
            if not self._write(data):
                return
        stdio = self._stdio()
        if stdio is not None and self.stdin_once:
            stdio.close_stdin()

    def _stdio(self) -> Any:
        """The stdin of the followed run, once it started (None: it is over)."""
        while True:
            if self._over():
                return None
            if self._started():
                stdio = self.ctr.stdio(self.cid)
                if stdio is not None:
                    return stdio
                if self._over():
                    return None
            self._wait(0.05)

    def _write(self, data: bytes) -> bool:
        if not data:
            return True
        stdio = self._stdio()
        return stdio is not None and stdio.write(data)
