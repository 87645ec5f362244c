"""The controller: every network operation as a transaction over IPAM, driver, kernel and store.

Each operation pushes an undo after each step that changed something; any failure
runs them in reverse, so a failed command leaves nothing behind. State is written
to the store only after the kernel side succeeded.

Container start (``setup_sandbox``) follows netavark's two phases: resolve and
validate every network first, then for each attachment, in order:
IPAM ``request_address`` -> ``create_endpoint`` -> ``join`` -> core addressing of
the interface -> store -> ``endpoint_joined``. Teardown is the reverse and
best-effort: ``leave`` -> ``delete_endpoint`` -> ``release_address`` -> store.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from netcore import interfaces, names
from netcore.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidConfig,
    NetcoreError,
    NotFound,
    TeardownIncomplete,
)
from netcore.ipam import GATEWAY_REQUEST, DefaultIpam, parse_ipv4_network
from netcore.ipam.pools import global_pools, reserved_range
from netcore.models import GLOBAL, Attachment, DriverInfo, Endpoint, EngineContext, Network, PortBinding, Sandbox
from netcore.osl.kernel import HostKernel, Kernel
from netcore.cluster_sync import ClusterSync
from netcore.plugins import Hooks, make_plugin_manager
from netcore.ports import PortAllocator
from netcore.steps import Transaction, pause_point
from netcore.store import Store

__all__ = ["Controller", "on_host"]

log = logging.getLogger("netcore.controller")
NETWORK, ENDPOINT, SANDBOX = "network", "endpoint", "sandbox"
INTENT = "intent"  # an operation under way: what reconcile undoes if the engine died in it
GLOBAL_IPAM = "global-default"  # the default IPAM on the cluster store, for global networks
GWBRIDGE = names.GATEWAY_NETWORK


class Controller(ClusterSync):
    """The public API of the core. Thread-safe: operations are serialised.

    The cluster's part (joining, watches, remote endpoints) is in ``cluster_sync.py``.

    Its collaborators come from the caller, so the same logic runs on the real kernel
    (``on_host``: SQLite, nftables, ``HostKernel``) or on fakes in unit tests
    (``MemoryStore``, ``NoFirewall``, ``FakeKernel``).
    """

    def __init__(
        self,
        root: str,
        store: Store,
        firewall: Any,
        plugins: Iterable[tuple[str, object]] = (),
        autoload: bool = True,
        cluster: Any = None,
        kernel: Kernel | None = None,
    ) -> None:
        """``store``: local scope, and a cache of the cluster's networks; ``firewall``: the
        engine's table (``nft.Firewall`` or ``nftnone.NoFirewall``); ``kernel``: namespaces,
        links and routes (``HostKernel`` when not given: it keeps no state)."""
        self.root = root
        self.tag = names.engine_tag(root)
        self.store = store
        self.cluster = cluster  # netcore.cluster.Cluster, or None on a single host
        self.firewall = firewall
        self.kernel: Kernel = kernel or HostKernel()
        self.ipam = DefaultIpam(self.store, self.kernel.host_prefixes)
        builtin: list[tuple[str, object]] = [("default", self.ipam)]
        self.global_ipam: DefaultIpam | None = None
        if cluster is not None:
            self.global_ipam = DefaultIpam(cluster.store, self.kernel.host_prefixes, pools=global_pools, space="GlobalDefault", lease=cluster.lease_id)
            builtin.append((GLOBAL_IPAM, self.global_ipam))
        self.ports = PortAllocator()
        self.hooks = Hooks(make_plugin_manager([*builtin, *plugins], autoload=autoload))
        self.lock = threading.RLock()
        self._started = False
        self._peers: dict[str, Endpoint] = {}  # endpoints of other hosts, by id
        self._closed = False
        self._table_watch: Any = None  # the firewall's watch on its table (``stop()``)

    def start(self) -> None:
        """Set up the engine's table, hand plugins their context, reconcile store and kernel."""
        with self.lock:
            self.firewall.ensure()
            self.hooks.configure(EngineContext(root=self.root, tag=self.tag, firewall=self.firewall, cluster=self.cluster, store=self.store))
            joined = False
            if self.cluster is not None:
                self.cluster.store.on_lease_lost = lambda lease: threading.Thread(target=self._rejoin, daemon=True).start()
                try:
                    self._join_networks()
                    joined = True
                except NetcoreError as exc:  # etcd away: local work goes on, the cluster catches up later
                    log.warning("cluster: %s; local networks only until it answers", exc)
            self._started = True
            self.reconcile()
            stored = [
                (ep.ip, b)
                for data in self.store.list(SANDBOX)
                for ep in self.sandbox_endpoints(Sandbox.from_dict(data))
                if ep.ip
                for b in ep.ports
            ]
            try:
                if self.firewall.prune_ports(stored):
                    log.info("reconcile: removed published ports that no container holds")
            except NetcoreError as exc:
                log.warning("reconcile: published ports: %s", exc)
            for data in self.store.list(SANDBOX):
                sandbox = Sandbox.from_dict(data)
                for ep in self.sandbox_endpoints(sandbox):
                    net = self.network(ep.network_id)
                    if ep.ports:  # hold the host ports again; the driver re-programs idempotently
                        self.ports.hold(ep.ports)
                        try:
                            self.hooks.driver(net.driver).program_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
                        except NetcoreError as exc:
                            log.warning("restore published ports of %s: %s", ep.name, exc)
                    self.hooks.notify("endpoint_restored", network=net, endpoint=ep, sandbox=sandbox)
            self._table_watch = self.firewall.watch(self._table_gone)
            if joined:
                self._sync_endpoints(self.cluster.watch(ENDPOINT, self._on_endpoint_event))
            elif self.cluster is not None:
                threading.Thread(target=self._join_later, daemon=True).start()

    def _intend(self, ident: str, op: str, **data: Any) -> None:
        """Write down an operation before its first kernel change; its commit deletes the note.

        An engine killed in between leaves the note, and reconcile undoes what it says
        (``_undo_intents``): the store, IPAM and the kernel converge to "never happened".
        """
        self.store.put(INTENT, ident, {"op": op, **data})

    def _undo_intents(self) -> None:
        """Roll back every operation a killed engine left half done (at start, before anything else)."""
        for data in self.store.list(INTENT):
            op = data.get("op")
            try:
                if op == "create_network":
                    self._undo_create_network(Network.from_dict(data["network"]))
                elif op == "connect":
                    self._undo_connect(Endpoint.from_dict(data["endpoint"]), Sandbox.from_dict(data["sandbox"]))
                elif op == "disconnect":
                    self._finish_disconnect(Endpoint.from_dict(data["endpoint"]), Sandbox.from_dict(data["sandbox"]))
                else:
                    log.warning("reconcile: unknown intent %r", op)
            except Exception as exc:  # one bad note must not stop the engine from starting
                log.warning("reconcile: undo %s: %s", op, exc)
            ident = (data.get("network") or data.get("endpoint") or {}).get("id", "")
            self.store.delete(INTENT, ident)

    def _undo_create_network(self, net: Network) -> None:
        log.info("reconcile: undoing the interrupted create of network %s", net.name)
        if self.store.get(NETWORK, net.id) is not None:
            return  # committed after all
        if net.scope == GLOBAL and self.cluster is not None and self.cluster.store.get(NETWORK, net.id) is not None:
            return  # the cluster has it: the cluster sync makes it here like any other host's
        try:
            self.hooks.driver(net.driver).delete_network(network=net)
        except NetcoreError as exc:
            log.warning("reconcile: %s", exc)
        if net.pool_id:
            ipam = self._ipam(net)
            if net.gateway:
                ipam.release_address(pool_id=net.pool_id, address=net.gateway)
            ipam.release_pool(pool_id=net.pool_id)

    def _undo_connect(self, ep: Endpoint, sandbox: Sandbox) -> None:
        log.info("reconcile: undoing the interrupted connect of %s", ep.name)
        if self.store.get(ENDPOINT, ep.id) is not None:
            return  # committed after all
        data = self.store.get(NETWORK, ep.network_id)
        net = Network.from_dict(data) if data else None
        if net is not None:
            drv = self.hooks.driver(net.driver)
            for undo in (
                lambda: drv.revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox),
                lambda: drv.leave(network=net, endpoint=ep, sandbox=sandbox, teardown=False),
                lambda: drv.delete_endpoint(network=net, endpoint=ep),
            ):
                try:
                    undo()
                except Exception as exc:
                    log.warning("reconcile: %s", exc)
            if net.scope == GLOBAL and self.cluster is not None:
                self.cluster.withdraw(ep.id)
            if net.pool_id and ep.ip:
                self._ipam(net).release_address(pool_id=net.pool_id, address=ep.ip)
        current = self.sandbox(sandbox.id)
        if current is not None and current.netns_path and self.kernel.netns_exists(current.netns_path):
            gw = next((e for e in self.sandbox_endpoints(current) if e.id == current.gateway_endpoint), None)
            if gw is not None:  # the connect may have moved the default route to its own interface
                interfaces.set_default_route(self.kernel, current, gw)

    def _finish_disconnect(self, ep: Endpoint, sandbox: Sandbox) -> None:
        """A disconnect (or a container's teardown) was under way: finish it; every step is idempotent."""
        log.info("reconcile: finishing the interrupted disconnect of %s", ep.name)
        data = self.store.get(ENDPOINT, ep.id)
        if data is None:
            return
        ep = Endpoint.from_dict(data)
        net_data = self.store.get(NETWORK, ep.network_id)
        sandbox = self.sandbox(sandbox.id) or sandbox
        if net_data is None:
            self.store.delete(ENDPOINT, ep.id)
            return
        try:
            self._disconnect(Network.from_dict(net_data), sandbox, ep)
        except TeardownIncomplete as exc:  # what is left is gone already (the first run got that far)
            log.info("reconcile: %s", exc)

    def _table_gone(self) -> None:
        """Someone deleted the engine's nftables table (``nft flush ruleset``): put it back
        from the store, as a restart would, while the containers keep running."""
        with self.lock:
            if self._closed or self._table_watch is None or self.firewall.exists():
                return
            log.warning("nftables table %s was deleted: restoring isolation and published ports", self.firewall.table)
            self.firewall.ensure()
            for net in self.networks():
                try:
                    self.hooks.driver(net.driver).restore_network(network=net, endpoints=self.endpoints(net))
                except NetcoreError as exc:
                    log.warning("restore network %s: %s", net.name, exc)
            for data in self.store.list(SANDBOX):
                sandbox = Sandbox.from_dict(data)
                for ep in self.sandbox_endpoints(sandbox):
                    if ep.ports:
                        net = self.network(ep.network_id)
                        try:
                            self.hooks.driver(net.driver).program_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
                        except NetcoreError as exc:
                            log.warning("restore published ports of %s: %s", ep.name, exc)

    def _stop_table_watch(self) -> None:
        watch, self._table_watch = self._table_watch, None
        if watch is not None:
            watch.stop()

    # ================================================================ lookups ====

    def networks(self) -> list[Network]:
        nets = [Network.from_dict(d) for d in self.store.list(NETWORK)]
        return sorted(nets, key=lambda n: n.name)

    def network(self, ref: str) -> Network:
        """A network by name, id, or unique id prefix (like Docker)."""
        data = self.store.find(NETWORK, ref) or self.store.get(NETWORK, ref)
        if data is None and len(ref) >= 3:
            hits = [d for d in self.store.list(NETWORK) if d["id"].startswith(ref)]
            if len(hits) > 1:
                raise NotFound(f"network {ref} is ambiguous ({len(hits)} matches)")
            data = hits[0] if hits else None
        if data is None:
            raise NotFound(f"network {ref} not found")
        return Network.from_dict(data)

    def endpoints(self, network: Network) -> list[Endpoint]:
        return [Endpoint.from_dict(d) for d in self.store.list(ENDPOINT, parent=network.id)]

    def sandbox(self, sandbox_id: str) -> Sandbox | None:
        data = self.store.get(SANDBOX, sandbox_id)
        return Sandbox.from_dict(data) if data else None

    def sandbox_ids(self) -> list[str]:
        """Every sandbox on record (the runtime's reconcile finds those no container owns)."""
        return [d["id"] for d in self.store.list(SANDBOX)]

    def sandbox_endpoints(self, sandbox: Sandbox) -> list[Endpoint]:
        out = []
        for eid in sandbox.endpoints:
            data = self.store.get(ENDPOINT, eid)
            if data:
                out.append(Endpoint.from_dict(data))
        return out

    def driver_info(self, driver: str) -> DriverInfo:
        return self.hooks.driver(driver).driver_info() or DriverInfo(name=driver)

    def drivers(self) -> list[str]:
        return self.hooks.drivers()

    def _ipam(self, net: Network) -> Any:
        """The IPAM of a network; ``default`` on a global network means the cluster's."""
        name = GLOBAL_IPAM if net.scope == GLOBAL and net.ipam_driver == "default" else net.ipam_driver
        return self.hooks.ipam(name)

    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any]:
        return self.hooks.driver(network.driver).endpoint_oper_info(network=network, endpoint=endpoint) or {}

    def network_oper_info(self, network: Network) -> dict[str, Any]:
        """Driver-specific runtime state of a network (routed: its blocks, its BGP sessions)."""
        try:
            return self.hooks.driver(network.driver).network_oper_info(network=network) or {}
        except NotFound:
            return {}
        except NetcoreError as exc:  # state is for show: a failing driver must not break inspect or ls
            log.warning("network %s: driver state: %s", network.name, exc)
            return {"Error": str(exc)}

    # ================================================================ networks ===

    def create_network(
        self,
        name: str,
        driver: str = "bridge",
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
        if not names.valid_object_name(name):
            raise InvalidConfig(f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        with self.lock:
            if self.store.find(NETWORK, name) is not None:
                raise AlreadyExists(f"network with name {name} already exists")
            drv = self.hooks.driver(driver)
            info = drv.driver_info() or DriverInfo(name=driver)
            self.firewall.coexist()  # Docker may have started after this engine
            if info.data_scope == GLOBAL:
                if self.cluster is None:
                    raise InvalidConfig(
                        f"{driver} networks span hosts and need a cluster: start the engine with "
                        "--cluster-store etcd://HOST:PORT --cluster-advertise ADDRESS"
                    )
                if self.cluster.store.find(NETWORK, name) is not None:
                    raise AlreadyExists(f"network with name {name} already exists")
            _check_ipam_input(subnet, gateway, ip_range, link_local=info.link_local)
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
                    ipam = self._ipam(net)
                    with self.store.transaction():  # the pool and the intent to undo it, together
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
                        self._intend(net.id, "create_network", network=net.to_dict())
                    tx.push("intent", lambda: self.store.delete(INTENT, net.id))
                    # a pool of our own choosing already avoids the host's prefixes
                    owner = self.kernel.address_owner(net.gateway) if net.gateway and (subnet or gateway) else None
                    if owner is not None:
                        raise InvalidConfig(f"invalid gateway {net.gateway} of subnet {net.subnet}: it is an address of this host ({owner})")
                elif subnet or gateway or ip_range or aux_addresses:
                    raise InvalidConfig(f"the {driver} driver takes no --subnet, --gateway, --ip-range or --aux-address")
                else:
                    self._intend(net.id, "create_network", network=net.to_dict())
                    tx.push("intent", lambda: self.store.delete(INTENT, net.id))
                tx.step("network.driver")
                drv.create_network(network=net)
                tx.push("network.driver", lambda: drv.delete_network(network=net))
                tx.step("network.store")
                if net.scope == GLOBAL:  # the cluster's create decides a name race between hosts
                    self.cluster.store.put(NETWORK, net.id, net.to_dict(), name=net.name, create=True)
                    tx.push("network.cluster", lambda: self.cluster.store.delete(NETWORK, net.id))
                with self.store.transaction():
                    self.store.put(NETWORK, net.id, net.to_dict(), name=net.name, create=True)
                    self.store.delete(INTENT, net.id)
            self.hooks.notify("network_created", network=net)
            return net

    def delete_network(self, ref: str, force: bool = False) -> Network:
        """Refused for predefined networks and networks with endpoints (unless ``force``)."""
        with self.lock:
            net = self.network(ref)
            if net.predefined and not force:
                raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
            eps = self.endpoints(net)
            if net.scope == GLOBAL and self.cluster is not None:
                eps = self.cluster.endpoints(net.id)  # on every host
            if eps:
                who = ", ".join(sorted(e.name for e in eps))
                raise Conflict(f"error while removing network: network {net.name} has active endpoints ({who})")
            errors: list[BaseException] = []
            pause_point("network.delete")
            try:
                self.hooks.driver(net.driver).delete_network(network=net)
            except NotFound as exc:  # driver gone: forget the record anyway
                log.warning("%s", exc)
            except Exception as exc:
                errors.append(exc)
            pause_point("network.release")
            with self.store.transaction():  # pool and record go together: a crash before keeps both (reconcile restores the network)
                if net.pool_id:
                    try:
                        ipam = self._ipam(net)
                        if net.gateway:
                            ipam.release_address(pool_id=net.pool_id, address=net.gateway)
                        ipam.release_pool(pool_id=net.pool_id)
                    except Exception as exc:
                        errors.append(exc)
                if net.scope == GLOBAL and self.cluster is not None:
                    self.cluster.store.delete(NETWORK, net.id)  # the other hosts forget it through their watch
                self.store.delete(NETWORK, net.id)
            self.hooks.notify("network_deleted", network=net)
            if errors:
                raise TeardownIncomplete(f"delete network {net.name}", errors)
            return net

    def prune_networks(self) -> list[str]:
        """Remove every user network without endpoints; returns their names."""
        removed = []
        with self.lock:
            for net in self.networks():
                if not net.predefined and not self.store.count(ENDPOINT, parent=net.id):
                    self.delete_network(net.id)
                    removed.append(net.name)
        return removed

    # ================================================================ sandboxes ==

    def setup_sandbox(
        self,
        sandbox_id: str,
        name: str,
        attachments: list[Attachment],
        hostname: str = "",
        dns_servers: Iterable[str] = (),
        ports: Iterable[PortBinding] = (),
        netns_path: str | None = None,
    ) -> Sandbox:
        """A container's network stack: its netns and one endpoint per attachment, all or nothing.

        ``hostname`` and ``dns_servers`` are for name resolution (observers such as the
        embedded DNS read them off the sandbox); ``ports`` are published through the
        endpoint that gives the sandbox its default route. ``netns_path``: a netns that
        someone else made and deletes (a CNI runtime's), used instead of a new one.
        """
        with self.lock, self.kernel.session():  # one netlink socket in the new netns for all the steps
            nets = [self.network(a.network) for a in attachments]
            host_ns = [n for n in nets if self.driver_info(n.driver).host_namespace]
            if host_ns and len(nets) > 1:
                raise InvalidConfig(f"conflicting options: {host_ns[0].name} type networking can't be used with other networks")
            if len({n.id for n in nets}) != len(nets):
                raise InvalidConfig("a container cannot be connected to the same network twice")
            for net, att in zip(nets, attachments):
                self._check_attachment(net, att)
            path = None
            pause_point("sandbox.netns")
            if not host_ns:
                path = netns_path or self.kernel.create_netns(f"nc-{self.tag}-{sandbox_id[:12]}")
            sandbox = Sandbox(
                id=sandbox_id,
                netns_path=path,
                name=name,
                hostname=hostname,
                dns_servers=list(dns_servers),
                ports=list(ports),
                external=bool(netns_path) and not host_ns,
            )
            try:
                pause_point("sandbox.store")
                self.store.put(SANDBOX, sandbox_id, sandbox.to_dict(), create=True)
                for net, att in zip(nets, attachments):
                    self._connect(net, sandbox, att)
                self._gateway_service(sandbox)
            except BaseException:
                self._teardown(sandbox)
                raise
            return sandbox

    def teardown_sandbox(self, sandbox_id: str) -> None:
        """Every endpoint leaves, the netns goes. Best-effort; a missing sandbox is fine."""
        with self.lock, self.kernel.session():
            sandbox = self.sandbox(sandbox_id)
            if sandbox is not None:
                self._teardown(sandbox)

    def _teardown(self, sandbox: Sandbox) -> None:
        """Every endpoint leaves (``leave`` with ``teardown=True`` when this deletes the netns:
        the kernel then reaps the interfaces in it), then the netns goes."""
        errors: list[BaseException] = []
        going = sandbox.netns_path is not None and not sandbox.external and self.kernel.netns_exists(sandbox.netns_path)
        for ep in reversed(self.sandbox_endpoints(sandbox)):
            try:
                self._disconnect(self.network(ep.network_id), sandbox, ep, teardown=going)
            except Exception as exc:
                errors.append(exc)
        pause_point("sandbox.netns.delete")
        if sandbox.netns_path and not sandbox.external:
            try:
                self.kernel.delete_netns(sandbox.netns_path)
            except Exception as exc:
                errors.append(exc)
        pause_point("sandbox.forget")
        self.store.delete(SANDBOX, sandbox.id)
        if errors:
            raise TeardownIncomplete(f"tear down sandbox {sandbox.name or sandbox.id[:12]}", errors)

    def connect(
        self, network_ref: str, sandbox_id: str, ip: str | None = None, aliases: Iterable[str] = (), gw_priority: int = 0,
        ifname: str = "",
    ) -> Endpoint:
        """Put a running sandbox on one more network (``network connect``)."""
        with self.lock, self.kernel.session():
            sandbox = self.sandbox(sandbox_id)
            if sandbox is None:
                raise NotFound(f"sandbox {sandbox_id[:12]} not found")
            net = self.network(network_ref)
            if sandbox.netns_path is None:
                raise Forbidden("container sharing network namespace with host network cannot be connected to any other network")
            if self.driver_info(net.driver).host_namespace:
                raise Forbidden(f"container cannot be disconnected from its namespace to join {net.name}")
            if any(e.network_id == net.id for e in self.sandbox_endpoints(sandbox)):
                raise AlreadyExists(f"endpoint with name {sandbox.name} already exists in network {net.name}")
            att = Attachment(network=net.id, ip=ip, aliases=tuple(aliases), gw_priority=gw_priority, ifname=ifname)
            self._check_attachment(net, att)
            ep = self._connect(net, sandbox, att)
            try:
                self._gateway_service(sandbox)
            except BaseException:
                self._disconnect(net, sandbox, ep)
                raise
            return ep

    def disconnect(self, network_ref: str, sandbox_id: str) -> Endpoint:
        with self.lock, self.kernel.session():
            sandbox = self.sandbox(sandbox_id)
            if sandbox is None:
                raise NotFound(f"sandbox {sandbox_id[:12]} not found")
            net = self.network(network_ref)
            ep = next((e for e in self.sandbox_endpoints(sandbox) if e.network_id == net.id), None)
            if ep is None:
                raise NotFound(f"container {sandbox.name} is not connected to network {net.name}")
            self._disconnect(net, sandbox, ep)
            try:
                self._gateway_service(sandbox)
            except NetcoreError as exc:
                log.warning("%s: gateway bridge: %s", sandbox.name, exc)
            return ep

    def _gateway_service(self, sandbox: Sandbox) -> None:
        """Attach the sandbox to the gateway bridge while it needs one, detach it after.

        A sandbox needs it when one of its networks spans hosts (overlay) and is not
        internal, and no other network gives it a default route: like Docker's
        docker_gwbridge, a local bridge network (icc off) for egress and published ports.
        """
        if sandbox.netns_path is None:
            return
        eps = self.sandbox_endpoints(sandbox)
        gw = self.store.find(NETWORK, GWBRIDGE)
        gw_id = gw["id"] if gw else None
        others = [(e, self.network(e.network_id)) for e in eps if e.network_id != gw_id]
        need = any(self.driver_info(n.driver).connectivity_scope == GLOBAL and not n.internal for _, n in others) and not any(
            e.gateway for e, _ in others
        )
        current = next((e for e in eps if e.network_id == gw_id), None)
        if need and current is None:
            net = Network.from_dict(gw) if gw else self.create_network(GWBRIDGE, "bridge", options={"icc": "false"})
            self._connect(net, sandbox, Attachment(network=net.id))
        elif current is not None and not need:
            self._disconnect(self.network(current.network_id), sandbox, current)

    def _check_attachment(self, net: Network, att: Attachment) -> None:
        """Refuse a bad --ip or --alias before anything is reserved.

        Aliases are DNS names like the container's own, so they follow the
        container-name rules; and one that is another container's name on the network
        is refused, or DNS would answer that name with both containers.
        """
        if isinstance(att.aliases, str):
            raise InvalidConfig("aliases must be a list of names")
        for alias in att.aliases:
            if not isinstance(alias, str) or not names.valid_object_name(alias):
                raise InvalidConfig(f"invalid alias {alias!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if att.aliases:
            wanted = {a.lower() for a in att.aliases}
            others = self.cluster.endpoints(net.id) if net.scope == GLOBAL and self.cluster is not None else self.endpoints(net)
            taken = next((e.name for e in others if e.name.lower() in wanted), None)
            if taken is not None:
                raise Conflict(f"alias {taken} is the name of another container on network {net.name}")
        if att.ip is not None:
            if not net.subnet:
                raise InvalidConfig(f"network {net.name} has no addresses: --ip is not allowed")
            try:
                ip = ipaddress.IPv4Address(att.ip)
            except ValueError:
                raise InvalidConfig(f"invalid IP address {att.ip!r}") from None
            if ip not in ipaddress.ip_network(net.subnet):
                raise InvalidConfig(f"address {ip} is not in subnet {net.subnet} of network {net.name}")

    def _connect(self, net: Network, sandbox: Sandbox, att: Attachment) -> Endpoint:
        drv = self.hooks.driver(net.driver)
        used = {e.ifname for e in self.sandbox_endpoints(sandbox)}
        if att.ifname in used:
            raise AlreadyExists(f"{sandbox.name or sandbox.id[:12]} already has an interface {att.ifname}")
        ifname = att.ifname or next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        ep = Endpoint(id=names.new_id(), network_id=net.id, name=sandbox.name, sandbox_id=sandbox.id, ifname=ifname, aliases=list(att.aliases), gw_priority=att.gw_priority)
        with Transaction(f"connect {sandbox.name} to {net.name}") as tx:
            if net.pool_id:
                tx.step("endpoint.ipam")
                ipam = self._ipam(net)
                with self.store.transaction():  # the address and the intent to undo it, together
                    ip = ipam.request_address(pool_id=net.pool_id, address=att.ip, options={})
                    tx.push("ipam.address", lambda: ipam.release_address(pool_id=net.pool_id, address=ip))
                    ep.address = f"{ip}/{net.prefixlen}"
                    self._intend(ep.id, "connect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
            else:
                self._intend(ep.id, "connect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
            tx.push("intent", lambda: self.store.delete(INTENT, ep.id))
            tx.step("endpoint.create")
            info = drv.create_endpoint(network=net, endpoint=ep)
            tx.push("endpoint.create", lambda: drv.delete_endpoint(network=net, endpoint=ep))
            if info is not None:
                ep.mac = ep.mac or info.mac
                ep.address = ep.address or info.address
            tx.step("endpoint.join")
            join = drv.join(network=net, endpoint=ep, sandbox=sandbox)
            tx.push("endpoint.join", lambda: drv.leave(network=net, endpoint=ep, sandbox=sandbox, teardown=False))
            if join is not None:
                ep.gateway = join.gateway
                tx.step("endpoint.configure")
                interfaces.configure(self.kernel, sandbox, ep, join)
            if net.scope == GLOBAL and self.cluster is not None:
                tx.step("endpoint.cluster")
                ep.host = self.cluster.advertise
                ep.dns_names = list(dict.fromkeys(n for n in (sandbox.name, *ep.aliases, sandbox.hostname, sandbox.id[:12]) if n))
                self.cluster.publish(ep)
                tx.push("endpoint.cluster", lambda: self.cluster.withdraw(ep.id))
            previous = sandbox.gateway_endpoint
            changed = self._elect_gateway(sandbox, [*self.sandbox_endpoints(sandbox), ep], tx)
            tx.push("sandbox.gateway", lambda: setattr(sandbox, "gateway_endpoint", previous))
            tx.step("endpoint.store")
            with self.store.transaction():
                self.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id, create=True)
                self.store.delete(INTENT, ep.id)
                for other in changed:
                    if other.id != ep.id:
                        self.store.put(ENDPOINT, other.id, other.to_dict(), parent=other.network_id)
                sandbox.endpoints.append(ep.id)
                self.store.put(SANDBOX, sandbox.id, sandbox.to_dict())
        self.hooks.notify("endpoint_joined", network=net, endpoint=ep, sandbox=sandbox)
        return ep

    def _elect_gateway(self, sandbox: Sandbox, endpoints: list[Endpoint], tx: Transaction) -> list[Endpoint]:
        """Give the default route, and the published ports with it, to the right endpoint.

        That is the endpoint with a gateway and the highest ``gw_priority``; among equals
        the one that joined first, so the first network keeps the route unless asked
        otherwise (Docker's ``gw-priority``). Returns the endpoints whose records changed.
        """
        if sandbox.netns_path is None:
            return []
        best = max((e for e in endpoints if e.gateway), key=lambda e: e.gw_priority, default=None)
        if best is None or best.id == sandbox.gateway_endpoint:
            return []
        current = next((e for e in endpoints if e.id == sandbox.gateway_endpoint), None)
        tx.step("endpoint.gateway")
        interfaces.set_default_route(self.kernel, sandbox, best)
        if current is not None:
            tx.push("endpoint.gateway", lambda: interfaces.set_default_route(self.kernel, sandbox, current))
            old_net, old_ports = self.network(current.network_id), list(current.ports)
            self._unpublish(old_net, current, sandbox)
            tx.push("endpoint.unpublish", lambda: self._publish_ports(old_net, current, sandbox, old_ports))
        sandbox.gateway_endpoint = best.id
        self._publish_ports(self.network(best.network_id), best, sandbox, sandbox.ports, tx)
        return [e for e in (current, best) if e is not None]

    def _publish_ports(
        self, net: Network, ep: Endpoint, sandbox: Sandbox, ports: list[PortBinding], tx: Transaction | None = None
    ) -> None:
        """Publish ``ports`` through ``ep``, the endpoint with the sandbox's default route.

        Host ports are chosen and held here, for every driver alike; the driver only
        programs the forwarding. Drivers without ``program_external_connectivity``
        (host, none) publish nothing, as Docker discards ports there. Without ``tx``
        it is a transaction of its own.
        """
        if not ports or not self.hooks.implements(net.driver, "program_external_connectivity"):
            return
        if tx is None:
            with Transaction(f"publish ports of {sandbox.name} on {net.name}") as own:
                return self._publish_ports(net, ep, sandbox, ports, own)
        tx.step("endpoint.ports")
        ep.ports = self.ports.reserve(ports)
        tx.push("endpoint.ports", lambda: self.ports.release(ep.ports))
        drv = self.hooks.driver(net.driver)
        drv.program_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
        tx.push("endpoint.publish", lambda: drv.revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox))

    def _unpublish(self, net: Network, ep: Endpoint, sandbox: Sandbox) -> None:
        if not ep.ports:
            return
        try:
            self.hooks.driver(net.driver).revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
        finally:
            self.ports.release(ep.ports)
            ep.ports = []

    def _disconnect(self, net: Network, sandbox: Sandbox, ep: Endpoint, teardown: bool = False) -> None:
        """Undo ``_connect``. ``teardown``: the whole sandbox goes and its netns is deleted next,
        so the default route is not handed on and the driver may leave the interface to the
        kernel (see the ``leave`` hook). A kill -9 half way is finished by reconcile (its intent)."""
        errors: list[BaseException] = []
        self._intend(ep.id, "disconnect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
        try:
            drv = self.hooks.driver(net.driver)
            for point, step in (
                ("endpoint.unpublish", lambda: self._unpublish(net, ep, sandbox)),
                ("endpoint.leave", lambda: drv.leave(network=net, endpoint=ep, sandbox=sandbox, teardown=teardown)),
                ("endpoint.delete", lambda: drv.delete_endpoint(network=net, endpoint=ep)),
            ):
                pause_point(point)
                try:
                    step()
                except Exception as exc:
                    errors.append(exc)
        except NotFound as exc:
            errors.append(exc)
        if net.scope == GLOBAL and self.cluster is not None:
            try:
                self.cluster.withdraw(ep.id)
            except Exception as exc:
                errors.append(exc)
        pause_point("endpoint.release")
        if net.pool_id and ep.ip:
            try:
                self._ipam(net).release_address(pool_id=net.pool_id, address=ep.ip)
            except Exception as exc:
                errors.append(exc)
        pause_point("endpoint.forget")
        with self.store.transaction():
            self.store.delete(ENDPOINT, ep.id)
            self.store.delete(INTENT, ep.id)
            if ep.id in sandbox.endpoints:
                sandbox.endpoints.remove(ep.id)
            if self.store.get(SANDBOX, sandbox.id) is not None:
                self.store.put(SANDBOX, sandbox.id, sandbox.to_dict())
        self.hooks.notify("endpoint_left", network=net, endpoint=ep, sandbox=sandbox)
        if ep.id == sandbox.gateway_endpoint and not teardown:
            self._reelect_gateway(sandbox)
        if errors:
            raise TeardownIncomplete(f"disconnect {ep.name} from {net.name}", errors)

    def _reelect_gateway(self, sandbox: Sandbox) -> None:
        """The default route left with its endpoint: hand it on (best-effort; the disconnect stands)."""
        sandbox.gateway_endpoint = ""
        if sandbox.netns_path and self.kernel.netns_exists(sandbox.netns_path):
            try:
                with Transaction(f"move the default route of {sandbox.name}") as tx:
                    for ep in self._elect_gateway(sandbox, self.sandbox_endpoints(sandbox), tx):
                        self.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=ep.network_id)
            except NetcoreError as exc:
                log.warning("%s: %s", sandbox.name, exc)
                sandbox.gateway_endpoint = ""
        if self.store.get(SANDBOX, sandbox.id) is not None:
            self.store.put(SANDBOX, sandbox.id, sandbox.to_dict())

    # ================================================================ reconcile ==

    def reconcile(self) -> None:
        """Make kernel and store agree after a restart.

        Operations a killed engine left half done (their intent notes) are undone
        (create, connect) or finished (disconnect);
        stored networks are restored by their drivers; sandboxes whose netns is gone
        lose their endpoints; links and namespaces carrying this engine's tag but
        no record are removed.
        """
        with self.lock:
            self._undo_intents()
            for net in self.networks():
                try:
                    self.hooks.driver(net.driver).restore_network(network=net, endpoints=self.endpoints(net))
                except NetcoreError as exc:
                    log.warning("restore network %s: %s", net.name, exc)
            for data in self.store.list(SANDBOX):
                sandbox = Sandbox.from_dict(data)
                if sandbox.netns_path and not self.kernel.netns_exists(sandbox.netns_path):
                    try:
                        self._teardown(sandbox)
                    except NetcoreError as exc:
                        log.warning("%s", exc)
            known = {d["id"] for d in self.store.list(NETWORK)} | {d["id"] for d in self.store.list(ENDPOINT)}
            for link, alias in self.kernel.owned_links(f"netcore:{self.tag}:"):
                parsed = names.parse_link_alias(alias)
                if parsed and parsed[1] not in known:
                    log.info("reconcile: removing orphan link %s", link)
                    self.kernel.delete_link(link)
            paths = {d.get("netns_path") for d in self.store.list(SANDBOX)}
            for name in self.kernel.netns_names():
                path = f"{self.kernel.netns_dir}/{name}"
                if names.is_sandbox_netns(name, self.tag) and path not in paths:
                    log.info("reconcile: removing orphan netns %s", name)
                    self.kernel.delete_netns(path)

    def reset(self) -> None:
        """Remove everything this engine made: sandboxes, networks (predefined too), its table."""
        self._stop_table_watch()  # the table goes on purpose
        with self.lock:
            for data in self.store.list(SANDBOX):
                try:
                    self._teardown(Sandbox.from_dict(data))
                except NetcoreError as exc:
                    log.warning("%s", exc)
            for net in self.networks():
                try:
                    if net.scope == GLOBAL:
                        self._forget_network(net)  # the cluster's: other hosts may use it
                    else:
                        self.delete_network(net.id, force=True)
                except NetcoreError as exc:
                    log.warning("%s", exc)
            self.firewall.delete()
            self.reconcile()

    def close(self) -> None:
        """Stop; the containers and their endpoints stay (the lease is left to lapse, not revoked:
        an engine restarted within its TTL takes its endpoints over without a gap)."""
        self._closed = True
        self._stop_table_watch()
        self.hooks.notify("shutdown")
        if self.cluster is not None:
            self.cluster.close()
        self.firewall.close()
        self.store.close()


def on_host(root: str, **kwargs: Any) -> Controller:
    """A controller on the real kernel: its SQLite store and nftables table under ``root``
    (what the daemon and the root tests run)."""
    from netcore.osl.nft import Firewall
    from netcore.store import open_store

    return Controller(root, store=open_store(root), firewall=Firewall(names.table_name(root)), kernel=HostKernel(), **kwargs)


def _check_ipam_input(subnet: str | None, gateway: str | None, ip_range: str | None, link_local: bool = False) -> None:
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
