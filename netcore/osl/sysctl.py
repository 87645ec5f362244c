"""sysctl reads and writes through /proc/sys (in the calling thread's netns)."""

from __future__ import annotations

from netcore.errors import KernelError

__all__ = ["read", "write", "conf_key", "neigh_key"]


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
