"""Networks: create, delete and prune, each a transaction with its intent note.

``create_network``: IPAM pool -> gateway address -> driver ``create_network`` ->
store -> ``network_created``. A kill -9 in between leaves the intent, which
``undo_create`` (called by reconcile) rolls back.
"""

from __future__ import annotations

import ipaddress
import time

from netcore import names
from netcore.controller.core import ENDPOINT, INTENT, NETWORK, Core, log
from netcore.errors import AlreadyExists, Conflict, Forbidden, InvalidConfig, NetcoreError, NotFound, TeardownIncomplete
from netcore.ipam import GATEWAY_REQUEST, parse_ipv4_network
from netcore.ipam.pools import reserved_range
from netcore.models import GLOBAL, Network
from netcore.steps import Transaction, pause_point

__all__ = ["Networks", "check_ipam_input"]


class Networks:
    """The network operations of one controller. Callers hold ``core.lock``."""

    def __init__(self, core: Core, default_driver: str | None = None) -> None:
        self.core = core
        self.default_driver = default_driver  # the engine's configuration (Docker's: bridge)

    def create(
        self,
        name: str,
        driver: str | None = None,
        subnet: str | None = None,
        gateway: str | None = None,
        ip_range: str | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
        ipam_driver: str = "default",
        predefined: bool = False,
        attachable: bool = False,
        aux_addresses: dict[str, str] | None = None,
    ) -> Network:
        """IPAM pool -> gateway address (and ``aux_addresses``, reserved as it is) -> driver
        ``create_network`` -> store -> ``network_created``."""
        core = self.core
        if not names.valid_object_name(name):
            raise InvalidConfig(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        driver = driver or self.default_driver
        if not driver:
            raise InvalidConfig("no network driver given, and this engine has no default driver")
        if core.store.find(NETWORK, name) is not None:
            raise AlreadyExists(f"network with name {name} already exists")
        drv = core.hooks.driver(driver)
        info = core.driver_info(driver)
        core.firewall.coexist()  # Docker may have started after this engine
        cluster = core.cluster if info.data_scope == GLOBAL else None
        if info.data_scope == GLOBAL:
            if cluster is None:
                raise InvalidConfig(
                    f"{driver} networks span hosts and need a cluster: start the engine with "
                    "--cluster-store etcd://HOST:PORT --cluster-advertise ADDRESS"
                )
            if cluster.store.find(NETWORK, name) is not None:
                raise AlreadyExists(f"network with name {name} already exists")
        check_ipam_input(subnet, gateway, ip_range, link_local=info.link_local)
        if ipam_driver == "default" and info.ipam:
            ipam_driver = info.ipam  # the driver's own IPAM (routed: per-host blocks)
        net = Network(
            id=names.new_id(),
            name=name,
            driver=driver,
            scope=info.data_scope,
            ipam_driver=ipam_driver,
            options=dict(options or {}),
            labels=dict(labels or {}),
            internal=internal,
            predefined=predefined,
            attachable=attachable,
            aux_addresses=dict(aux_addresses or {}),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        with Transaction(f"create network {name}") as tx:
            if info.addressing:
                tx.step("network.ipam")
                ipam = core.ipam_of(net)
                with core.store.transaction():  # the pool and the intent to undo it, together
                    pool = ipam.request_pool(network_id=net.id, subnet=subnet, ip_range=ip_range, options={})
                    tx.push("ipam.pool", lambda: ipam.release_pool(pool_id=pool.pool_id))
                    net.subnet, net.pool_id, net.ip_range = pool.subnet, pool.pool_id, ip_range
                    net.gateway = ipam.request_address(
                        pool_id=pool.pool_id, address=gateway or pool.gateway, options=dict(GATEWAY_REQUEST)
                    )
                    tx.push("ipam.gateway", lambda: ipam.release_address(pool_id=pool.pool_id, address=net.gateway))
                    for aux in net.aux_addresses.values():  # reserved like the gateway: never leased
                        ipam.request_address(pool_id=pool.pool_id, address=aux, options=dict(GATEWAY_REQUEST))
                        tx.push("ipam.aux", lambda aux=aux: ipam.release_address(pool_id=pool.pool_id, address=aux))
                    core.intend(net.id, "create_network", network=net.to_dict())
                tx.push("intent", lambda: core.store.delete(INTENT, net.id))
                # a pool of our own choosing already avoids the host's prefixes
                owner = core.kernel.address_owner(net.gateway) if net.gateway and (subnet or gateway) else None
                if owner is not None:
                    raise InvalidConfig(f"invalid gateway {net.gateway} of subnet {net.subnet}: it is an address of this host ({owner})")
            elif subnet or gateway or ip_range or aux_addresses:
                raise InvalidConfig(f"the {driver} driver takes no --subnet, --gateway, --ip-range or --aux-address")
            else:
                core.intend(net.id, "create_network", network=net.to_dict())
                tx.push("intent", lambda: core.store.delete(INTENT, net.id))
            tx.step("network.driver")
            drv.create_network(network=net)
            tx.push("network.driver", lambda: drv.delete_network(network=net))
            tx.step("network.store")
            if cluster is not None:  # the cluster's create decides a name race between hosts
                cluster.store.put(NETWORK, net.id, net.to_dict(), name=net.name, create=True)
                tx.push("network.cluster", lambda: cluster.store.delete(NETWORK, net.id))
            with core.store.transaction():
                core.store.put(NETWORK, net.id, net.to_dict(), name=net.name, create=True)
                core.store.delete(INTENT, net.id)
        core.hooks.notify("network_created", network=net)
        return net

    def delete(self, ref: str, force: bool = False) -> Network:
        """Refused for predefined networks and networks with endpoints (unless ``force``)."""
        core = self.core
        net = core.network(ref)
        if net.predefined and not force:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        cluster = core.cluster_of(net)
        eps = cluster.endpoints(net.id) if cluster is not None else core.endpoints(net)  # on every host
        if eps:
            who = ", ".join(sorted(e.name for e in eps))
            raise Conflict(f"error while removing network: network {net.name} has active endpoints ({who})")
        errors: list[BaseException] = []
        pause_point("network.delete")
        try:
            core.hooks.driver(net.driver).delete_network(network=net)
        except NotFound as exc:  # driver gone: forget the record anyway
            log.warning("%s", exc)
        except Exception as exc:
            errors.append(exc)
        pause_point("network.release")
        with core.store.transaction():  # pool and record go together: a crash before keeps both (reconcile restores the network)
            if net.pool_id:
                try:
                    ipam = core.ipam_of(net)
                    if net.gateway:
                        ipam.release_address(pool_id=net.pool_id, address=net.gateway)
                    ipam.release_pool(pool_id=net.pool_id)
                except Exception as exc:
                    errors.append(exc)
            if cluster is not None:
                cluster.store.delete(NETWORK, net.id)  # the other hosts forget it through their watch
            core.store.delete(NETWORK, net.id)
        core.hooks.notify("network_deleted", network=net)
        if errors:
            raise TeardownIncomplete(f"delete network {net.name}", errors)
        return net

    def prune(self) -> list[str]:
        """Remove every user network without endpoints; returns their names."""
        removed = []
        for net in self.core.networks():
            if not net.predefined and not self.core.store.count(ENDPOINT, parent=net.id):
                self.delete(net.id)
                removed.append(net.name)
        return removed

    def forget(self, net: Network) -> None:
        """The cluster removed a global network: drop what this host has of it (not the cluster's record)."""
        core = self.core
        if core.store.count(ENDPOINT, parent=net.id):
            log.warning("network %s was removed from the cluster while local containers are on it", net.name)
            return
        try:
            core.hooks.driver(net.driver).delete_network(network=net)
        except NetcoreError as exc:
            log.warning("forget network %s: %s", net.name, exc)
        core.store.delete(NETWORK, net.id)
        core.hooks.notify("network_deleted", network=net)

    def undo_create(self, net: Network) -> None:
        """Reconcile: roll back a create a killed engine left half done."""
        core = self.core
        log.info("reconcile: undoing the interrupted create of network %s", net.name)
        if core.store.get(NETWORK, net.id) is not None:
            return  # committed after all
        cluster = core.cluster_of(net)
        if cluster is not None and cluster.store.get(NETWORK, net.id) is not None:
            return  # the cluster has it: the cluster sync makes it here like any other host's
        try:
            core.hooks.driver(net.driver).delete_network(network=net)
        except NetcoreError as exc:
            log.warning("reconcile: %s", exc)
        if net.pool_id:
            ipam = core.ipam_of(net)
            if net.gateway:
                ipam.release_address(pool_id=net.pool_id, address=net.gateway)
            ipam.release_pool(pool_id=net.pool_id)


def check_ipam_input(subnet: str | None, gateway: str | None, ip_range: str | None, link_local: bool = False) -> None:
    """Validate --subnet/--gateway/--ip-range before anything is reserved.

    Reserved blocks (loopback, multicast, 0/8, 240/4, link-local) are refused; a
    driver takes link-local subnets only if its ``DriverInfo.link_local`` says so.
    """
    if subnet is None:
        if gateway or ip_range:
            raise InvalidConfig("--gateway and --ip-range need --subnet")
        return
    net = parse_ipv4_network(subnet)
    hit = reserved_range(net, link_local)
    if hit is not None:
        raise InvalidConfig(f"invalid subnet {net}: it overlaps {hit[0]}, which is reserved ({hit[1]})")
    if ip_range is not None:
        rng = parse_ipv4_network(ip_range, "ip-range")
        if not rng.subnet_of(net):
            raise InvalidConfig(f"ip-range {rng} is not inside subnet {net}")
    if gateway is not None:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise InvalidConfig(f"invalid gateway {gateway!r}") from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidConfig(f"gateway {gw} is not a usable address of subnet {net}")
