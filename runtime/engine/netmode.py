"""``--network container:NAME``: a container that joins another's network namespace.

Docker's sidecar pattern: the new container gets no sandbox and no endpoints of its own;
its processes run in the other container's network namespace (``localhost`` reaches the
other's listeners) and see the other's /etc/hosts, /etc/resolv.conf and host name. Its
record keeps ``network_mode: "container:<id>"`` (what inspect shows as
``HostConfig.NetworkMode``) and no networks.

The rules are Docker's (moby's runconfig errors): the flags that shape a network of one's
own (``-p``, ``-P``, ``--expose``, ``--dns``, ``-h``, ``--ip``, ``--network-alias``, a second
network) are refused at create; the other container must run when this one starts; a
container in this mode cannot be connected to (or disconnected from) networks.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from netcore import Conflict, Forbidden, InvalidConfig

__all__ = ["PREFIX", "target", "check_create", "refuse_network_change", "Owner", "resolve", "link_files"]

PREFIX = "container:"
FILES = ("hosts", "resolv.conf", "hostname")  # what the joined container sees of the other's
_MAX_CHAIN = 16  # container:a where a is itself container:b ...

# Docker's words (moby runconfig/errors.go)
CONFLICTS = {
    "hostname": "conflicting options: hostname and the network mode",
    "dns": "conflicting options: dns and the network mode",
    "publish": "conflicting options: port publishing and the container type network mode",
    "expose": "conflicting options: port exposing and the container type network mode",
    "mac": "conflicting options: mac-address and the network mode",
    "ip": "user specified IP address is supported on user defined networks only",
    "alias": "network-scoped alias is supported only for containers in user defined networks",
    "shared": "container sharing network namespace with another container or host cannot be connected to any other network",
}


def target(networks: list[dict[str, Any]] | None) -> str | None:
    """The NAME of ``container:NAME`` if the networks asked for are that mode, else None;
    ``container:`` with other networks besides is refused."""
    names = [str(n.get("name") or "") for n in networks or ()]
    joined = [n for n in names if n.startswith(PREFIX)]
    if not joined:
        return None
    if len(names) > 1:
        raise InvalidConfig(CONFLICTS["shared"])
    ref = joined[0][len(PREFIX):]
    if not ref:
        raise InvalidConfig("invalid network mode: container: needs a container name or id")
    return ref


def check_create(spec: dict[str, Any], hostname: str | None, dns: list[str] | None, exposed: dict[str, Any] | None,
                 bindings: dict[str, Any] | None, publish_all: bool, mac_address: str | None = None) -> None:
    """Refuse the flags that make no sense without a network of one's own, in Docker's words."""
    if hostname:
        raise InvalidConfig(CONFLICTS["hostname"])
    if dns:
        raise InvalidConfig(CONFLICTS["dns"])
    if bindings or publish_all:
        raise InvalidConfig(CONFLICTS["publish"])
    if exposed:
        raise InvalidConfig(CONFLICTS["expose"])
    if mac_address:
        raise InvalidConfig(CONFLICTS["mac"])
    if spec.get("ip"):
        raise InvalidConfig(CONFLICTS["ip"])
    if spec.get("aliases"):
        raise InvalidConfig(CONFLICTS["alias"])


def refuse_network_change(rec: dict[str, Any]) -> None:
    """``network connect`` / ``disconnect`` of a container in this mode: Docker's refusal."""
    if rec.get("network_mode", "").startswith(PREFIX):
        raise Forbidden(CONFLICTS["shared"])


class Owner(Protocol):
    """What ``resolve`` needs of the engine's containers (``Containers``)."""

    def get(self, ref: str) -> dict[str, Any]: ...


def resolve(containers: Owner, rec: dict[str, Any]) -> dict[str, Any]:
    """The running container whose sandbox ``rec`` joins (following ``container:`` chains);
    Docker's refusal if it is not running."""
    seen = {rec["id"]}
    mode = rec["network_mode"]
    for _ in range(_MAX_CHAIN):
        other = containers.get(mode[len(PREFIX):])
        if other["state"] != "running":
            raise Conflict(f"cannot join network of a non running container: {other['id']}")
        if other["id"] in seen:
            raise InvalidConfig(f"invalid network mode {mode}: a container cannot join its own network namespace")
        seen.add(other["id"])
        mode = other.get("network_mode") or ""
        if not mode.startswith(PREFIX):
            return other
    raise InvalidConfig(f"invalid network mode {rec['network_mode']}: too many containers in a chain")


def link_files(other_dir: str, own_dir: str) -> None:
    """The container's hosts, resolv.conf and hostname are the other's (symlinks: the engine
    rewrites those files in place, so a later connect of the other shows here too)."""
    for name in FILES:
        own, theirs = os.path.join(own_dir, name), os.path.join(other_dir, name)
        if os.path.lexists(own):
            os.unlink(own)
        os.symlink(theirs, own)
