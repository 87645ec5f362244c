"""sysctl reads and writes through /proc/sys (in the calling thread's netns)."""

from __future__ import annotations

import os

from netcore.errors import KernelError

__all__ = ["read", "write", "conf_key", "neigh_key", "disable_ipv6", "enable_ip_forward"]


def _path(key: str) -> str:
    """``net.ipv4.ip_forward`` or, for keys with interface names (which may hold dots), a path."""
    return "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))


def conf_key(ifname: str, setting: str) -> str:
    """The key of a per-interface IPv4 setting, e.g. ``conf_key("br0", "route_localnet")``."""
    return f"net/ipv4/conf/{ifname}/{setting}"


def neigh_key(ifname: str, setting: str) -> str:
    """The key of a per-interface IPv4 neighbour (ARP) setting, e.g. ``neigh_key("ncve-x", "proxy_delay")``."""
    return f"net/ipv4/neigh/{ifname}/{setting}"


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def write(key: str, value: str | int) -> None:
    try:
        with open(_path(key), "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise KernelError("sysctl", f"{key}={value}", exc.errno or str(exc)) from None


def disable_ipv6(ifname: str) -> None:
    """No IPv6 on ``ifname``, in the calling thread's netns: no link-local address, so no
    DAD or MLD multicast, which a bridge floods to every port (each new container then
    cost work proportional to the ones running). netcore's networks are IPv4-only, and
    Docker turns IPv6 off on their container interfaces too. A kernel without IPv6 has
    nothing to turn off."""
    key = f"net/ipv6/conf/{ifname}/disable_ipv6"
    if os.path.exists(_path(key)):
        write(key, 1)


def enable_ip_forward() -> None:
    """IPv4 forwarding on in the calling thread's netns, as Docker sets it (written only when off)."""
    if read("net.ipv4.ip_forward") != "1":
        write("net.ipv4.ip_forward", 1)
