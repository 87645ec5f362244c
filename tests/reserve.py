"""Host ports and test subnets, for tests that run side by side with each other and with the
machine's own traffic: the one place the suite takes them from.

A port is drawn below the kernel's ephemeral range (where outgoing connections take
theirs, so nothing grabs it between the draw and its use), checked free by binding it for
TCP and UDP, and never handed out twice in one process. A subnet is a random
``10.a.b.0/24`` that overlaps no route or address on the host (all tables) and nothing
handed out before in this process; the random /24 makes collisions with parallel runs
unlikely.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import subprocess

__all__ = ["free_port", "free_subnet", "host_networks"]

_ports: set[int] = set()
_subnets: list[ipaddress.IPv4Network] = []


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
        if port not in _ports and _bindable(port, ip):
            _ports.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ip_json(*argv: str) -> list:
    out = subprocess.run(["ip", "-j", *argv], capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 prefix the host routes or owns (all tables)."""
    nets = []
    for r in _ip_json("-4", "route", "show", "table", "all"):
        dst = r.get("dst")
        if not dst or dst == "default":
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            pass
    for link in _ip_json("-4", "addr", "show"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def free_subnet(prefixlen: int = 24) -> str:
    """A fresh ``10.a.b.0/24`` (or a ``prefixlen`` subnet at its start), reserved for this process."""
    taken = host_networks()
    for _ in range(200):
        b = secrets.token_bytes(2)
        if b[0] in (0, 255):
            continue
        block = ipaddress.ip_network(f"10.{b[0]}.{b[1]}.0/24")
        if any(block.overlaps(n) for n in taken + _subnets):
            continue
        _subnets.append(block)
        return str(next(block.subnets(new_prefix=prefixlen)) if prefixlen > 24 else block)
    raise RuntimeError("no free 10.x.y.0/24 found")
