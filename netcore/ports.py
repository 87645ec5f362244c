"""Host ports for published container ports: choose them, and hold them while published.

The kernel's DNAT does the forwarding; this module only makes sure a host port is
used once. Each published port is held by a socket bound to it in the engine (bound,
never listening; DNAT takes the packets before any socket could), so that:

- a port some host program already uses is refused before anything is published,
  by the same ``bind`` that would fail for that program later;
- no host program can take a published port while it is published;
- two publications of one port (``0.0.0.0:8080`` and ``127.0.0.1:8080`` included)
  collide exactly where two programs' binds would.

After an engine restart, ``hold`` takes the stored bindings' ports again.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable

from netcore.errors import Conflict, InvalidConfig
from netcore.models import PortBinding

__all__ = ["PortAllocator", "ephemeral_range"]

log = logging.getLogger("netcore.ports")
PROTOCOLS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
_Key = tuple[str, str, int]  # (proto, host ip, host port)


def ephemeral_range() -> tuple[int, int]:
    """The range ``-p CPORT`` picks from: the kernel's local port range, as Docker does."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 49153, 65535


def _describe(b: PortBinding, port: int) -> str:
    return f"{b.host_ip or '0.0.0.0'}:{port}/{b.proto}"


class PortAllocator:
    """The engine's published host ports. Thread-safe."""

    def __init__(self) -> None:
        self._held: dict[_Key, socket.socket] = {}
        self._lock = threading.Lock()
        self._cursor: int | None = None  # next ephemeral candidate: freed ports are not reused at once

    def reserve(self, requested: Iterable[PortBinding]) -> list[PortBinding]:
        """Concrete bindings for ``requested``, all held; on any failure none is held."""
        done: list[PortBinding] = []
        try:
            for b in requested:
                done.append(self._reserve_one(b))
        except BaseException:
            self.release(done)
            raise
        return done

    def release(self, bindings: Iterable[PortBinding]) -> None:
        with self._lock:
            for b in bindings:
                sock = self._held.pop((b.proto, b.host_ip, b.host_port), None)
                if sock is not None:
                    sock.close()

    def hold(self, bindings: Iterable[PortBinding]) -> None:
        """Take stored bindings' ports again (engine restart); a port lost meanwhile is logged."""
        for b in bindings:
            try:
                self._bind(b, b.host_port)
            except Conflict as exc:
                log.warning("published port not held: %s", exc)

    def held(self) -> int:
        return len(self._held)

    def close(self) -> None:
        with self._lock:
            for sock in self._held.values():
                sock.close()
            self._held.clear()

    # ------------------------------------------------------------------------------

    def _reserve_one(self, b: PortBinding) -> PortBinding:
        _validate(b)
        if b.host_port and not b.host_port_end:
            self._bind(b, b.host_port)
            return _concrete(b, b.host_port)
        low, high = (b.host_port, b.host_port_end) if b.host_port else ephemeral_range()
        span = high - low + 1
        with self._lock:
            start = self._cursor if self._cursor is not None and low <= self._cursor <= high and not b.host_port else low
        last: Conflict | None = None
        for i in range(span):
            port = low + (start - low + i) % span
            try:
                self._bind(b, port)
            except Conflict as exc:
                last = exc
                continue
            if not b.host_port:
                with self._lock:
                    self._cursor = port + 1 if port < high else low
            return _concrete(b, port)
        where = f"{b.host_ip or '0.0.0.0'}:{low}-{high}/{b.proto}"
        raise Conflict(f"Bind for {where} failed: no free port in the range ({last})")

    def _bind(self, b: PortBinding, port: int) -> None:
        key = (b.proto, b.host_ip, port)
        with self._lock:
            if key in self._held:
                raise Conflict(f"Bind for {_describe(b, port)} failed: port is already allocated")
            sock = socket.socket(socket.AF_INET, PROTOCOLS[b.proto] | socket.SOCK_CLOEXEC)
            try:
                sock.bind((b.host_ip or "0.0.0.0", port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    mine = any(k[0] == b.proto and k[2] == port for k in self._held)
                    why = "port is already allocated" if mine else "address already in use by another program"
                    raise Conflict(f"Bind for {_describe(b, port)} failed: {why}") from None
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise InvalidConfig(f"Bind for {_describe(b, port)} failed: {b.host_ip} is not an address of this host") from None
                raise Conflict(f"Bind for {_describe(b, port)} failed: {exc.strerror}") from None
            self._held[key] = sock


def _validate(b: PortBinding) -> None:
    if b.proto not in PROTOCOLS:
        raise InvalidConfig(f"invalid protocol {b.proto!r} for port {b.container_port}: expected tcp or udp")
    for port in (b.container_port, b.host_port, b.host_port_end):
        if not 0 <= port <= 65535:
            raise InvalidConfig(f"invalid port {port}: must be between 1 and 65535")
    if not b.container_port:
        raise InvalidConfig("invalid container port 0")
    if b.host_port_end and not b.host_port <= b.host_port_end:
        raise InvalidConfig(f"invalid host port range {b.host_port}-{b.host_port_end}")
    if b.host_ip:
        try:
            ipaddress.IPv4Address(b.host_ip)
        except ValueError:
            raise InvalidConfig(f"invalid host IP {b.host_ip!r}: netcore publishes on IPv4 addresses") from None


def _concrete(b: PortBinding, port: int) -> PortBinding:
    return PortBinding(container_port=b.container_port, proto=b.proto, host_ip=b.host_ip, host_port=port)
