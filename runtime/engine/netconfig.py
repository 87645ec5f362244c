"""The networks of a container that is not running: its record is all there is to change.

Docker lets ``network connect`` and ``disconnect`` work on a stopped container (the
network joins or leaves its config: its next start joins it or not); a running container
goes through the controller instead (``Containers.connect`` / ``disconnect``).
"""

from __future__ import annotations

from typing import Any

from netcore import Conflict, NetcoreError

__all__ = ["add_network", "forget_network"]


def add_network(controller: Any, rec: dict[str, Any], network: str, ip: str | None, aliases: list[str], gw_priority: int) -> None:
    """``network connect`` of a container that is not running: the network joins its record
    (the address is checked when it starts, as Docker's). Docker's error if it is on it."""
    net = controller.network(network)  # an unknown network: NotFound
    specs = rec.get("network_specs") or [{"name": n} for n in rec["networks"]]
    if any(_network_id(controller, s["name"]) == net.id for s in specs):
        raise Conflict(f"endpoint with name {rec['name']} already exists in network {net.name}")
    rec["network_specs"] = [*specs, {"name": net.id, "ip": ip, "aliases": aliases, "gw_priority": gw_priority}]
    rec["networks"] = [s["name"] for s in rec["network_specs"]]


def forget_network(controller: Any, rec: dict[str, Any], network: str) -> None:
    """``network disconnect`` of a container that is not running (Docker allows it): the
    network leaves its record, so its next start does not join it. Docker's error if it
    was not on it."""
    net = controller.network(network)  # an unknown network: NotFound
    keep = [s for s in rec.get("network_specs") or [{"name": n} for n in rec["networks"]]
            if _network_id(controller, s["name"]) != net.id]
    if len(keep) == len(rec.get("network_specs") or rec["networks"]):
        raise Conflict(f"container {rec['id']} is not connected to network {net.name}")
    rec["network_specs"] = keep
    rec["networks"] = [s["name"] for s in keep]


def _network_id(controller: Any, ref: str) -> str | None:
    try:
        return controller.network(ref).id
    except NetcoreError:  # a network removed since: not the one asked for
        return None
