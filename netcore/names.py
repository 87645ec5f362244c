"""Names of netcore's kernel objects, ids and MACs: one place, so reconcile can find its own.

Link names stay within the kernel's 15 characters and carry the ``nc`` prefix.
Every link netcore makes also carries an alias ``netcore:<tag>:<object id>`` (the
kernel's IFLA_IFALIAS), so engines side by side never touch each other's links.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets

__all__ = [
    "IFNAMSIZ",
    "GATEWAY_NETWORK",
    "new_id",
    "engine_tag",
    "bridge_name",
    "veth_name",
    "link_alias",
    "parse_link_alias",
    "table_name",
    "mac_from_ipv4",
    "mac_from_id",
    "valid_ifname",
    "valid_object_name",
    "is_sandbox_netns",
]

IFNAMSIZ = 15  # the kernel's limit, not counting the NUL
DEFAULT_ROOT = "/var/lib/netcore"
GATEWAY_NETWORK = "netcore_gwbridge"  # Docker's docker_gwbridge: egress and ports for overlay containers
_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # Docker's rule for container and network names


def new_id() -> str:
    """A 64-hex object id, like Docker's."""
    return secrets.token_hex(32)


def engine_tag(root: str) -> str:
    """Short id of an engine derived from its root dir: stable across restarts."""
    return hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:6]


def bridge_name(network_id: str) -> str:
    return f"ncbr-{network_id[:10]}"


def veth_name(endpoint_id: str) -> str:
    """Host end of an endpoint's veth pair."""
    return f"ncve-{endpoint_id[:10]}"


def link_alias(tag: str, object_id: str) -> str:
    return f"netcore:{tag}:{object_id}"


def parse_link_alias(alias: str | None) -> tuple[str, str] | None:
    """``(tag, object id)`` of a netcore link alias, or None for anyone else's link."""
    if not alias or not alias.startswith("netcore:"):
        return None
    parts = alias.split(":")
    return (parts[1], parts[2]) if len(parts) == 3 else None


def table_name(root: str) -> str:
    """The engine's nftables table: ``netcore`` for the default root, ``netcore-<tag>`` otherwise."""
    return "netcore" if root.rstrip("/") == DEFAULT_ROOT else f"netcore-{engine_tag(root)}"


def mac_from_ipv4(address: str) -> str:
    """Docker's scheme: 02:42 followed by the four bytes of the IPv4 address."""
    packed = ipaddress.IPv4Address(address.split("/")[0]).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def mac_from_id(object_id: str) -> str:
    """A locally administered unicast MAC derived from an object id (stable across restarts)."""
    raw = bytes.fromhex(hashlib.sha256(object_id.encode()).hexdigest()[:12])
    return ":".join(f"{b:02x}" for b in bytes([(raw[0] & 0xFC) | 0x02]) + raw[1:])


_IFNAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def valid_ifname(name: str) -> bool:
    """The kernel's interface-name rules, narrowed to names every tool takes unquoted.

    The kernel (``dev_valid_name``) wants 1 to 15 bytes, not ``.`` or ``..``, no ``/``,
    ``:`` or whitespace; it would take quotes, ``;``, ``}`` or non-ASCII, which then
    break shells, nft and udev rules. So: ASCII letters, digits, ``_``, ``.``, ``-``,
    starting with a letter or digit, at most 15 characters.
    """
    return len(name) <= IFNAMSIZ and bool(_IFNAME_RE.fullmatch(name))


def valid_object_name(name: str) -> bool:
    return bool(_NAME_RE.fullmatch(name)) and len(name) <= 128


def is_sandbox_netns(name: str, tag: str) -> bool:
    """Whether a netns name is one of this engine's sandboxes: ``nc-<tag>-<12 hex>``.

    Drivers name their own namespaces ``nc-<tag>-<kind>-...`` (the overlay's ``-ov-``),
    which reconcile leaves to them.
    """
    prefix = f"nc-{tag}-"
    rest = name[len(prefix):]
    return name.startswith(prefix) and len(rest) == 12 and all(c in "0123456789abcdef" for c in rest)
