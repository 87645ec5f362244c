"""Where Docker's ids meet netcore's records.

Everything lives in the engine's own store, so the plugin keeps its state across its
restart and dockerd's (dockerd never replays CreateNetwork): a Docker network maps to a
netcore network (a ``docker-network`` record; the creator's id is also a label); a
Docker endpoint is a netcore endpoint record under Docker's endpoint id (so reconcile
keeps its links). A global network (routed or overlay in a cluster) is one netcore
network for the Docker networks of every host that names it.
"""

from __future__ import annotations

from typing import Any

from netcore import GLOBAL, Endpoint, NetcoreError, Network
from netcore.controller import GLOBAL_IPAM, Controller

__all__ = ["DOCKER_ID", "IPAM_LABEL", "NETCORE_IPAM", "LOCAL_SPACE", "GLOBAL_SPACE", "PENDING", "network_of", "network_of_pool",
           "endpoint_of", "ipam_of", "uses_netcore_ipam", "remember", "forget", "last_user", "network_named", "MAPPING"]

DOCKER_ID = "com.docker.network.id"  # label: the Docker network id of a netcore network
IPAM_LABEL = "netcore.docker.ipam"  # label: "netcore-ipam" when Docker's IPAM driver was netcore's
NETCORE_IPAM = "netcore-ipam"
LOCAL_SPACE, GLOBAL_SPACE = "netcore", "netcore-global"  # netcore-ipam's address spaces
PENDING = "docker-ipam-pending"  # network id of a pool netcore-ipam handed out before CreateNetwork (":NAME" appended
# when --ipam-opt netcore.network=NAME named the network)
ENDPOINT = "endpoint"


MAPPING = "docker-network"  # Docker network id -> netcore network id (local store; cluster too for global networks)


def network_of(ctl: Controller, docker_id: str) -> Network | None:
    rec = ctl.store.get(MAPPING, docker_id)
    if rec is None:
        return None
    try:
        return ctl.network(rec["network_id"])
    except NetcoreError:
        return None


def remember(ctl: Controller, docker_id: str, net: Network) -> None:
    """This host's Docker network ``docker_id`` is netcore's ``net``; a global network's
    users on every host are counted in the cluster (the last one removes the network)."""
    ctl.store.put(MAPPING, docker_id, {"docker_id": docker_id, "network_id": net.id})
    if net.scope == GLOBAL and ctl.cluster is not None:
        ctl.cluster.store.put(MAPPING, f"{ctl.cluster.advertise}/{docker_id}",
                              {"docker_id": docker_id, "network_id": net.id, "host": ctl.cluster.advertise})


def last_user(ctl: Controller, docker_id: str, net: Network) -> bool:
    """Whether no Docker network but ``docker_id`` (on any host) uses ``net``."""
    if net.scope == GLOBAL and ctl.cluster is not None:
        mine = f"{ctl.cluster.advertise}/{docker_id}"
        return not any(r.get("network_id") == net.id and f"{r.get('host')}/{r.get('docker_id')}" != mine
                       for r in ctl.cluster.store.list(MAPPING))
    return True


def forget(ctl: Controller, docker_id: str, net: Network) -> None:
    ctl.store.delete(MAPPING, docker_id)
    if net.scope == GLOBAL and ctl.cluster is not None:
        ctl.cluster.store.delete(MAPPING, f"{ctl.cluster.advertise}/{docker_id}")


def network_of_pool(ctl: Controller, pool_id: str) -> Network | None:
    """The network of a pool id netcore-ipam gave out: the same id, or (a global network
    adopted on another host, whose pool lives in the cluster) the same subnet."""
    subnet = pool_id.split("/", 1)[1] if "/" in pool_id else None
    nets = ctl.networks()
    return next((n for n in nets if n.pool_id == pool_id), None) or next((n for n in nets if subnet and n.subnet == subnet), None)


def network_named(ctl: Controller, name: str) -> Network | None:
    try:
        return ctl.network(name)
    except NetcoreError:
        return None


def endpoint_of(ctl: Controller, endpoint_id: str) -> Endpoint | None:
    data = ctl.store.get(ENDPOINT, endpoint_id)
    return Endpoint.from_dict(data) if data else None


def ipam_of(ctl: Controller, net: Network) -> Any:
    """The hook relay of a network's IPAM (the cluster's default for global networks)."""
    name = GLOBAL_IPAM if net.scope == GLOBAL and net.ipam_driver == "default" else net.ipam_driver
    return ctl.hooks.ipam(name)


def uses_netcore_ipam(net: Network) -> bool:
    return net.labels.get(IPAM_LABEL) == NETCORE_IPAM
