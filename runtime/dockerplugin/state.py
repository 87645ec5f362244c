"""Where Docker's ids meet netcore's records.

Everything lives in the engine's own store, so the plugin keeps its state across its
restart and dockerd's (dockerd never replays CreateNetwork): a Docker network is a
netcore network labelled with Docker's network id; a Docker endpoint is a netcore
endpoint record under Docker's endpoint id (so reconcile keeps its links).
"""

from __future__ import annotations

from typing import Any

from netcore import GLOBAL, Endpoint, Network
from netcore.controller import GLOBAL_IPAM, Controller

__all__ = ["DOCKER_ID", "IPAM_LABEL", "NETCORE_IPAM", "LOCAL_SPACE", "GLOBAL_SPACE", "PENDING", "network_of", "network_of_pool",
           "endpoint_of", "ipam_of", "uses_netcore_ipam"]

DOCKER_ID = "com.docker.network.id"  # label: the Docker network id of a netcore network
IPAM_LABEL = "netcore.docker.ipam"  # label: "netcore-ipam" when Docker's IPAM driver was netcore's
NETCORE_IPAM = "netcore-ipam"
LOCAL_SPACE, GLOBAL_SPACE = "netcore", "netcore-global"  # netcore-ipam's address spaces
PENDING = "docker-ipam-pending"  # network id of a pool netcore-ipam handed out before CreateNetwork
ENDPOINT = "endpoint"


def network_of(ctl: Controller, docker_id: str) -> Network | None:
    return next((n for n in ctl.networks() if n.labels.get(DOCKER_ID) == docker_id), None)


def network_of_pool(ctl: Controller, pool_id: str) -> Network | None:
    return next((n for n in ctl.networks() if n.pool_id == pool_id), None)


def endpoint_of(ctl: Controller, endpoint_id: str) -> Endpoint | None:
    data = ctl.store.get(ENDPOINT, endpoint_id)
    return Endpoint.from_dict(data) if data else None


def ipam_of(ctl: Controller, net: Network) -> Any:
    """The hook relay of a network's IPAM (the cluster's default for global networks)."""
    name = GLOBAL_IPAM if net.scope == GLOBAL and net.ipam_driver == "default" else net.ipam_driver
    return ctl.hooks.ipam(name)


def uses_netcore_ipam(net: Network) -> bool:
    return net.labels.get(IPAM_LABEL) == NETCORE_IPAM
