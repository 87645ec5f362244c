"""Host ports for tests that run side by side with each other and with the machine's own traffic.

A port is drawn below the kernel's ephemeral range (where outgoing connections take
theirs, so nothing grabs it between the draw and its use), checked free by binding it for
TCP and UDP on every address, and never handed out twice in one process.
"""

from __future__ import annotations

import secrets
import socket

__all__ = ["free_port"]

_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int, ip: str) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


def free_port(ip: str = "0.0.0.0") -> int:
    """A port in [10000, ephemeral start) that nothing on ``ip`` holds now and this process has not given."""
    low, high = 10000, _ephemeral_start()
    for _ in range(1000):
        port = low + secrets.randbelow(high - low)
        if port not in _given and _bindable(port, ip):
            _given.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")
