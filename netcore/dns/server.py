"""The embedded DNS's sockets: one engine-wide thread and selector serving every sandbox.

Listening sockets are made on the caller's thread inside the sandbox's netns (a
socket stays in the namespace it was created in) and then handed to the loop.
Every socket the loop holds belongs to an *owner* (a sandbox id, or None for the
engine) so that everything living in a sandbox's netns - listeners, accepted TCP
connections, forwarding sockets - is closed together when the sandbox goes: an
open socket would keep the namespace alive in the kernel.

Other threads change the loop under its lock and wake it through a socket pair;
the loop holds the same lock while it handles events, so ``close_owner`` returns
only once no handler of that owner can run any more.
"""

from __future__ import annotations

import fcntl
import logging
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Protocol

from netcore.osl import netns

__all__ = ["ADDRESS", "PORT", "above_select_range", "Handler", "Loop", "Serve", "UdpListener", "TcpListener", "open_listeners"]

log = logging.getLogger("netcore.dns")

ADDRESS = "127.0.0.11"
PORT = 53
TCP_IDLE = 10.0  # seconds an idle client TCP connection is kept (RFC 7766 suggests ~10 s)
TCP_BACKLOG = 64
FD_SETSIZE = 1024  # select()'s limit: libraries in the engine still use it (libnftables)

# serve(owner, query wire, reply, tcp): answers now or later through ``reply(wire)``
Serve = Callable[[str, bytes, Callable[[bytes], None], bool], None]


class Handler(Protocol):
    """A socket in the loop and what to do when it is ready."""

    sock: socket.socket
    owner: str | None
    deadline: float | None  # time.monotonic() after which on_timeout runs; None: never

    def on_ready(self, mask: int) -> None: ...

    def on_timeout(self) -> None: ...

    def close(self) -> None: ...


class Loop:
    """One thread, one selector; handlers grouped by owner; timers from handler deadlines."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._sel = selectors.DefaultSelector()
        self._owned: dict[str | None, set[Handler]] = {}
        self._timed: set[Handler] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ membership --

    def add(self, handler: Handler, events: int = selectors.EVENT_READ) -> None:
        with self.lock:
            if self._stopping:
                raise RuntimeError("the DNS loop is stopped")
            self._sel.register(handler.sock, events, handler)
            self._owned.setdefault(handler.owner, set()).add(handler)
            if handler.deadline is not None:
                self._timed.add(handler)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="netcore-dns", daemon=True)
                self._thread.start()
        self._wake()

    def modify(self, handler: Handler, events: int) -> None:
        with self.lock:
            self._sel.modify(handler.sock, events, handler)

    def retime(self, handler: Handler) -> None:
        """Take note of a changed ``handler.deadline``."""
        with self.lock:
            if handler.deadline is None:
                self._timed.discard(handler)
            else:
                self._timed.add(handler)
        self._wake()

    def remove(self, handler: Handler) -> None:
        """Stop watching ``handler`` (the caller closes it). Unknown handlers are fine."""
        with self.lock:
            try:
                self._sel.unregister(handler.sock)
            except (KeyError, ValueError):
                pass
            group = self._owned.get(handler.owner)
            if group is not None:
                group.discard(handler)
                if not group:
                    del self._owned[handler.owner]
            self._timed.discard(handler)

    def close_owner(self, owner: str) -> int:
        """Close every socket of ``owner``; returns how many there were."""
        with self.lock:
            handlers = list(self._owned.get(owner, ()))
            for h in handlers:
                self.remove(h)
                _quietly(h.close)
            return len(handlers)

    def count(self, owner: str | None = None) -> int:
        with self.lock:
            return len(self._owned.get(owner, ()))

    def owners(self) -> list[str | None]:
        with self.lock:
            return list(self._owned)

    # ------------------------------------------------------------ lifecycle ---

    def stop(self) -> None:
        """Stop the thread and close every socket. Idempotent."""
        with self.lock:
            if self._stopping:
                return
            self._stopping = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self.lock:
            for group in list(self._owned.values()):
                for h in list(group):
                    self.remove(h)
                    _quietly(h.close)
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (the loop will wake anyway) or closed
            pass

    def _timeout(self) -> float | None:
        with self.lock:
            deadlines = [h.deadline for h in self._timed if h.deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _run(self) -> None:
        while not self._stopping:
            try:
                events = self._sel.select(self._timeout())
            except (OSError, ValueError):  # the selector was closed under us: stopping
                if self._stopping:
                    return
                raise
            with self.lock:
                if self._stopping:
                    return
                current = self._sel.get_map()
                for key, mask in events:
                    if key.data is None:
                        _drain(self._wake_r)
                        continue
                    if current.get(key.fd) is not key:  # removed while we waited
                        continue
                    try:
                        key.data.on_ready(mask)
                    except Exception:
                        log.exception("dns: handler failed")
                        self.remove(key.data)
                        _quietly(key.data.close)
                now = time.monotonic()
                for h in [h for h in self._timed if h.deadline is not None and h.deadline <= now]:
                    try:
                        h.on_timeout()
                    except Exception:
                        log.exception("dns: timer failed")
                        self.remove(h)
                        _quietly(h.close)


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        log.debug("dns: ignoring error on close", exc_info=True)


# ---------------------------------------------------------------- listeners -----


def open_listeners(netns_path: str | None, address: str = ADDRESS, port: int = PORT) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets bound to ``address:port`` inside the netns at ``netns_path``."""
    with netns.entered(netns_path):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((address, port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of an older engine's connections
        tcp.bind((address, port))
        tcp.listen(TCP_BACKLOG)
        udp.setblocking(False)
        tcp.setblocking(False)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return above_select_range(udp), above_select_range(tcp)


def above_select_range(sock: socket.socket) -> socket.socket:
    """The same socket on a descriptor >= FD_SETSIZE, if the engine's limit allows (else as is).

    Listeners live as long as their sandbox, two per sandbox: left on the lowest free
    descriptors they would push everything opened later past 1023, and libnftables
    (``select()`` on its netlink socket) aborts the engine when it gets such a descriptor.
    """
    try:
        fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, FD_SETSIZE)
    except OSError:  # RLIMIT_NOFILE at or below FD_SETSIZE
        return sock
    try:
        high = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        return sock
    high.settimeout(sock.gettimeout())  # the object's mode; O_NONBLOCK itself is shared
    sock.close()
    return high


class UdpListener:
    """Queries over UDP: each datagram is served; answers go back from 127.0.0.11:53."""

    deadline = None

    def __init__(self, sock: socket.socket, owner: str, serve: Serve) -> None:
        self.sock, self.owner, self._serve = sock, owner, serve

    def on_ready(self, mask: int) -> None:
        for _ in range(64):  # drain a burst, then let the others have a turn
            try:
                wire, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            self._serve(self.owner, wire, self._replier(addr), False)

    def _replier(self, addr: tuple[str, int]) -> Callable[[bytes], None]:
        def reply(wire: bytes) -> None:
            try:
                self.sock.sendto(wire, addr)
            except OSError as exc:  # the client or the sandbox went away
                log.debug("dns: reply to %s: %s", addr, exc)

        return reply

    def on_timeout(self) -> None:  # pragma: no cover - never timed
        pass

    def close(self) -> None:
        self.sock.close()


class TcpListener:
    """Accepts client connections; each one becomes a ``TcpConnection`` of the same owner."""

    deadline = None

    def __init__(self, sock: socket.socket, owner: str, serve: Serve, loop: Loop) -> None:
        self.sock, self.owner, self._serve, self._loop = sock, owner, serve, loop

    def on_ready(self, mask: int) -> None:
        for _ in range(16):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("dns: accept: %s", exc)
                return
            self._loop.add(TcpConnection(conn, self.owner, self._serve, self._loop))

    def on_timeout(self) -> None:  # pragma: no cover - never timed
        pass

    def close(self) -> None:
        self.sock.close()


class TcpConnection:
    """One client connection: two-byte length-prefixed messages (RFC 1035 4.2.2)."""

    def __init__(self, sock: socket.socket, owner: str, serve: Serve, loop: Loop) -> None:
        sock.settimeout(1.0)  # reads happen only when ready; a write may wait this long for a slow reader
        self.sock, self.owner, self._serve, self._loop = sock, owner, serve, loop
        self._buf = b""
        self.deadline: float | None = time.monotonic() + TCP_IDLE

    def on_ready(self, mask: int) -> None:
        try:
            data = self.sock.recv(65537)
        except OSError:
            data = b""
        if not data:
            self._finish()
            return
        self._buf += data
        self.deadline = time.monotonic() + TCP_IDLE
        while len(self._buf) >= 2:
            (size,) = struct.unpack("!H", self._buf[:2])
            if len(self._buf) < 2 + size:
                break
            wire, self._buf = self._buf[2 : 2 + size], self._buf[2 + size :]
            self._serve(self.owner, wire, self.send, True)

    def send(self, wire: bytes) -> None:
        try:
            self.sock.sendall(struct.pack("!H", len(wire)) + wire)
        except OSError as exc:
            log.debug("dns: tcp reply: %s", exc)
            self._finish()

    def on_timeout(self) -> None:
        self._finish()

    def _finish(self) -> None:
        self._loop.remove(self)
        self.close()

    def close(self) -> None:
        self.sock.close()
