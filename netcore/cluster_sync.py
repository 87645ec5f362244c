"""The controller's side of a cluster: keep the local copy of global state in step with etcd.

Methods of ``Controller`` (which inherits them) kept apart from the single-host
operations: joining at start (or later, when etcd was away), the network and
endpoint watches, publishing this host's endpoints again under a new lease, and
telling drivers and observers about endpoints on other hosts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from netcore.backoff import Backoff
from netcore.errors import AlreadyExists, NetcoreError
from netcore.models import GLOBAL, Endpoint, Network

__all__ = ["ClusterSync"]

log = logging.getLogger("netcore.controller")
NETWORK, ENDPOINT = "network", "endpoint"


class ClusterSync:
    """Mixed into ``Controller``; uses its ``cluster``, ``store``, ``hooks``, ``lock`` and lookups."""

    cluster: Any
    store: Any
    hooks: Any
    lock: threading.RLock
    global_ipam: Any
    _peers: dict[str, Endpoint]
    _closed: bool

    def _join_networks(self) -> None:
        self.cluster.join()
        self._sync_networks(self.cluster.watch(NETWORK, self._on_network_event))

    def _join_later(self) -> None:
        """The engine started without etcd: join as soon as it answers, then sync as at start."""
        delays = Backoff(0.5, 10.0)
        while not self._closed:
            delays.wait()
            try:
                with self.lock:
                    self._join_networks()
                    for net in self.networks():
                        if net.scope == GLOBAL:
                            self.hooks.driver(net.driver).restore_network(network=net, endpoints=self.endpoints(net))
                    self._sync_endpoints(self.cluster.watch(ENDPOINT, self._on_endpoint_event))
                log.info("cluster: joined")
                return
            except NetcoreError as exc:
                log.debug("cluster: still away: %s", exc)

    def _sync_networks(self, records: list[dict[str, Any]]) -> None:
        """The local cache of global networks becomes what the cluster has (engine start)."""
        ids = set()
        for data in records:
            ids.add(data["id"])
            self._cache_network(data)
        for net in self.networks():
            if net.scope == GLOBAL and net.id not in ids:
                self._forget_network(net)

    def _cache_network(self, data: dict[str, Any]) -> None:
        try:
            self.store.put(NETWORK, data["id"], data, name=data["name"])
        except AlreadyExists:
            log.error("cluster network %s clashes with a local network of the same name: not shown here", data["name"])

    def _forget_network(self, net: Network) -> None:
        """Another host removed a global network: drop what this host has of it."""
        if self.store.count(ENDPOINT, parent=net.id):
            log.warning("network %s was removed from the cluster while local containers are on it", net.name)
            return
        try:
            self.hooks.driver(net.driver).delete_network(network=net)
        except NetcoreError as exc:
            log.warning("forget network %s: %s", net.name, exc)
        self.store.delete(NETWORK, net.id)
        self.hooks.notify("network_deleted", network=net)

    def _on_network_event(self, event: str, nid: str, data: dict[str, Any] | None) -> None:
        with self.lock:
            try:
                if event == "put" and data is not None:
                    self._cache_network(data)
                elif event == "delete":
                    cached = self.store.get(NETWORK, nid)
                    if cached is not None:
                        self._forget_network(Network.from_dict(cached))
            except Exception:
                log.exception("cluster network event %s %s", event, nid[:12])

    def _sync_endpoints(self, records: list[dict[str, Any]]) -> None:
        """Engine start: program every remote endpoint, drop this host's stale ones, (re)publish the live ones."""
        mine = {e.id for n in self.networks() if n.scope == GLOBAL for e in self.endpoints(n)}
        for data in records:
            ep = Endpoint.from_dict(data)
            if ep.host != self.cluster.advertise:
                self._peer_added(ep)
            elif ep.id not in mine:
                self.cluster.withdraw(ep.id)  # left while this engine was down
        self._republish(renew_addresses=True)  # a new lease: the old one lapses

    def _republish(self, renew_addresses: bool = False) -> None:
        """This host's endpoints on global networks (and their addresses) under the current lease."""
        for net in self.networks():
            if net.scope == GLOBAL:
                for ep in self.endpoints(net):
                    self.cluster.publish(ep)
                    if renew_addresses and self.global_ipam and net.pool_id and ep.ip and net.ipam_driver == "default":
                        self.global_ipam.renew(net.pool_id, ep.ip)

    def _rejoin(self) -> None:
        """The lease lapsed (etcd was away too long): join again and put back what this host owns."""
        delays = Backoff(0.5, 30.0)
        for _ in range(7):
            try:
                with self.lock:
                    self.cluster.join()
                    self._republish(renew_addresses=True)
                log.info("cluster: joined again under a new lease")
                return
            except NetcoreError as exc:
                log.warning("cluster: rejoin failed (%s); retrying", exc)
                delays.wait()

    def _on_endpoint_event(self, event: str, eid: str, data: dict[str, Any] | None) -> None:
        with self.lock:
            try:
                if event == "put" and data is not None:
                    ep = Endpoint.from_dict(data)
                    if ep.host != self.cluster.advertise:
                        self._peer_added(ep)
                elif event == "delete":
                    gone = self._peers.pop(eid, None)
                    if gone is not None:
                        net = self.network(gone.network_id)
                        self.hooks.driver(net.driver).peer_delete(network=net, endpoint=gone)
                        self.hooks.notify("peer_left", network=net, endpoint=gone)
            except Exception:
                log.exception("cluster endpoint event %s %s", event, eid[:12])

    def _peer_added(self, ep: Endpoint) -> None:
        data = self.store.get(NETWORK, ep.network_id)
        if data is None:
            log.debug("endpoint %s of unknown network %s", ep.id[:12], ep.network_id[:12])
            return
        net = Network.from_dict(data)
        self._peers[ep.id] = ep
        self.hooks.driver(net.driver).peer_add(network=net, endpoint=ep)
        self.hooks.notify("peer_joined", network=net, endpoint=ep)

