"""The controller's side of a cluster: keep the local copy of global state in step with etcd.

Joining at start (or later, when etcd was away), the network and endpoint
watches, publishing this host's endpoints again under a new lease, and telling
drivers and observers about endpoints on other hosts.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from netcore.backoff import Backoff
from netcore.controller.core import ENDPOINT, NETWORK, Core, log
from netcore.controller.networks import Networks
from netcore.errors import AlreadyExists, NetcoreError
from netcore.models import GLOBAL, Endpoint, Network

if TYPE_CHECKING:
    from netcore.cluster import Cluster

__all__ = ["ClusterSync"]


class ClusterSync:
    """One engine's membership in a cluster, as the controller sees it."""

    def __init__(self, core: Core, cluster: Cluster, networks: Networks) -> None:
        self.core = core
        self.cluster = cluster
        self.networks = networks
        self._peers: dict[str, Endpoint] = {}  # endpoints of other hosts, by id
        self._closed = threading.Event()  # set by close: the retry loops end at once

    def join(self) -> bool:
        """Engine start, before reconcile: join and cache the cluster's networks; False if etcd is away."""
        self.cluster.store.on_lease_lost = lambda lease: threading.Thread(target=self._rejoin, daemon=True).start()
        try:
            self._join_networks()
            return True
        except NetcoreError as exc:  # etcd away: local work goes on, the cluster catches up later
            log.warning("cluster: %s; local networks only until it answers", exc)
            return False

    def follow(self, joined: bool) -> None:
        """Engine start, after reconcile: watch endpoints, or keep trying to join in the background."""
        if joined:
            self._sync_endpoints(self.cluster.watch(ENDPOINT, self._on_endpoint_event))
        else:
            threading.Thread(target=self._join_later, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self.cluster.close()

    def _join_networks(self) -> None:
        self.cluster.join()
        self._sync_networks(self.cluster.watch(NETWORK, self._on_network_event))

    def _join_later(self) -> None:
        """The engine started without etcd: join as soon as it answers, then sync as at start."""
        delays = Backoff(0.5, 10.0)
        while not delays.wait(self._closed):
            try:
                with self.core.lock:
                    self._join_networks()
                    self.core.restore_networks([n for n in self.core.networks() if n.scope == GLOBAL])
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
        for net in self.core.networks():
            if net.scope == GLOBAL and net.id not in ids:
                self.networks.forget(net)

    def _cache_network(self, data: dict[str, Any]) -> None:
        try:
            self.core.store.put(NETWORK, data["id"], data, name=data["name"])
        except AlreadyExists:
            log.error("cluster network %s clashes with a local network of the same name: not shown here", data["name"])

    def _on_network_event(self, event: str, nid: str, data: dict[str, Any] | None) -> None:
        with self.core.lock:
            try:
                if event == "put" and data is not None:
                    self._cache_network(data)
                elif event == "delete":
                    cached = self.core.store.get(NETWORK, nid)
                    if cached is not None:
                        self.networks.forget(Network.from_dict(cached))
            except Exception:
                log.exception("cluster network event %s %s", event, nid[:12])

    def _sync_endpoints(self, records: list[dict[str, Any]]) -> None:
        """Engine start: program every remote endpoint, drop this host's stale ones, (re)publish the live ones."""
        mine = {e.id for n in self.core.networks() if n.scope == GLOBAL for e in self.core.endpoints(n)}
        for data in records:
            ep = Endpoint.from_dict(data)
            if ep.host != self.cluster.advertise:
                self._peer_added(ep)
            elif ep.id not in mine:
                self.cluster.withdraw(ep.id)  # left while this engine was down
        self._republish(renew_addresses=True)  # a new lease: the old one lapses

    def _republish(self, renew_addresses: bool = False) -> None:
        """This host's endpoints on global networks (and their addresses) under the current lease."""
        global_ipam = self.core.global_ipam
        for net in self.core.networks():
            if net.scope == GLOBAL:
                for ep in self.core.endpoints(net):
                    self.cluster.publish(ep)
                    if renew_addresses and global_ipam and net.pool_id and ep.ip and net.ipam_driver == "default":
                        global_ipam.renew(net.pool_id, ep.ip)

    def _rejoin(self) -> None:
        """The lease lapsed (etcd was away too long): join again and put back what this host owns."""
        delays = Backoff(0.5, 30.0)
        for _ in range(7):
            if self._closed.is_set():
                return
            try:
                with self.core.lock:
                    self.cluster.join()
                    self._republish(renew_addresses=True)
                log.info("cluster: joined again under a new lease")
                return
            except NetcoreError as exc:
                log.warning("cluster: rejoin failed (%s); retrying", exc)
                delays.wait(self._closed)

    def _on_endpoint_event(self, event: str, eid: str, data: dict[str, Any] | None) -> None:
        with self.core.lock:
            try:
                if event == "put" and data is not None:
                    ep = Endpoint.from_dict(data)
                    if ep.host != self.cluster.advertise:
                        self._peer_added(ep)
                elif event == "delete":
                    gone = self._peers.pop(eid, None)
                    if gone is not None:
                        net = self.core.network(gone.network_id)
                        self.core.hooks.driver(net.driver).peer_delete(network=net, endpoint=gone)
                        self.core.hooks.notify("peer_left", network=net, endpoint=gone)
            except Exception:
                log.exception("cluster endpoint event %s %s", event, eid[:12])

    def _peer_added(self, ep: Endpoint) -> None:
        data = self.core.store.get(NETWORK, ep.network_id)
        if data is None:
            log.debug("endpoint %s of unknown network %s", ep.id[:12], ep.network_id[:12])
            return
        net = Network.from_dict(data)
        self._peers[ep.id] = ep
        self.core.hooks.driver(net.driver).peer_add(network=net, endpoint=ep)
        self.core.hooks.notify("peer_joined", network=net, endpoint=ep)
