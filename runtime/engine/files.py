"""The files a container sees at /etc/hosts, /etc/resolv.conf and /etc/hostname."""

from __future__ import annotations

import os

__all__ = ["hosts", "resolv_conf", "write_in_place"]


def hosts(hostname: str, name: str, addresses: list[str]) -> str:
    """Like Docker's: loopback names, then each of the container's addresses with its names."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    names = " ".join(dict.fromkeys([hostname, name]))
    for address in addresses:
        lines.append(f"{address}\t{names}")
    return "\n".join(lines) + "\n"


def resolv_conf(host_file: str = "/etc/resolv.conf") -> str:
    """The host's resolver config without loopback nameservers, which mean nothing inside a netns."""
    try:
        with open(host_file) as f:
            text = f.read()
    except OSError:
        return ""
    kept = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and (parts[1].startswith("127.") or parts[1] == "::1"):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def write_in_place(path: str, text: str) -> None:
    """Rewrite a file keeping its inode: a bind mount of it inside a container sees the change."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
