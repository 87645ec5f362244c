"""The files a container sees at /etc/hosts, /etc/resolv.conf and /etc/hostname."""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["hosts", "resolv_conf", "engine_resolv_conf", "uses_embedded_dns", "write_in_place", "EMBEDDED_DNS"]

EMBEDDED_DNS = "127.0.0.11"


def hosts(hostname: str, name: str, addresses: list[str], extra: Iterable[tuple[str, str]] = ()) -> str:
    """Like Docker's: loopback names, the ``--add-host`` entries (``extra``: (ip, name)), then
    each of the container's addresses with its names."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    lines += [f"{ip}\t{host}" for ip, host in extra]
    names = " ".join(dict.fromkeys([hostname, name]))
    for address in addresses:
        lines.append(f"{address}\t{names}")
    return "\n".join(lines) + "\n"


def resolv_conf(embedded: bool = False, servers: Iterable[str] = (), host_file: str = "/etc/resolv.conf",
                search: Iterable[str] = (), options: Iterable[str] = ()) -> str:
    """A container's resolv.conf, made from the host's as Docker makes it.

    ``embedded``: one nameserver, the embedded DNS at 127.0.0.11 (which forwards to
    ``servers`` or the host's), the host's search domains, and ``options ndots:0``.
    Otherwise the host's file with ``servers`` (``--dns``) in place of its
    nameservers, and without loopback nameservers, which mean nothing in a netns. ``search`` (``--dns-search``) and
    ``options`` (``--dns-option``) replace the host's search domains and options.
    """
    try:
        with open(host_file) as f:
            text = f.read()
    except OSError:
        text = ""
    servers, search, options = list(servers), list(search), list(options)
    kept = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            if embedded or servers or parts[1].startswith("127.") or parts[1] == "::1":
                continue
        if parts and parts[0] == "options" and (embedded or options):
            continue  # replaced below
        if parts and parts[0] in ("search", "domain") and search:
            continue
        kept.append(line)
    head = [f"nameserver {EMBEDDED_DNS}"] if embedded else [f"nameserver {s}" for s in servers]
    head += [f"search {' '.join(search)}"] if search and search != ["."] else []
    opts = (["ndots:0"] if embedded and not any(o.startswith("ndots:") for o in options) else []) + options
    tail = [f"options {' '.join(opts)}"] if opts else []
    return "\n".join(head + kept + tail) + "\n"


def engine_resolv_conf(root: str, servers: list[str], host_file: str = "/etc/resolv.conf") -> str:
    """The resolver config the engine starts from: the host's, or with ``netcore daemon
    --dns`` the host's search domains and options with those nameservers instead (Docker's
    daemon-wide ``--dns``). Returns its path; the embedded DNS forwards to its nameservers."""
    if not servers:
        return host_file
    path = os.path.join(root, "resolv.conf")
    os.makedirs(root, exist_ok=True)
    write_in_place(path, resolv_conf(servers=servers, host_file=host_file))
    return path


def uses_embedded_dns(path: str) -> bool:
    try:
        with open(path) as f:
            return any(line.split()[:2] == ["nameserver", EMBEDDED_DNS] for line in f if line.strip())
    except OSError:
        return False


def write_in_place(path: str, text: str) -> None:
    """Rewrite a file keeping its inode: a bind mount of it inside a container sees the change."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
