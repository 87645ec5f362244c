"""The networks of a container that is not running: its record is all there is to change.

Docker lets ``network disconnect`` work on a stopped container (the network leaves its
config, and its next start does not join it); a running container goes through the
controller instead (``Containers.disconnect``).
"""

from __future__ import annotations

from typing import Any

from netcore import Conflict, NetcoreError

__all__ = ["forget_network"]


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
