"""The controller: every network operation as a transaction over IPAM, driver, kernel and store.

Each operation pushes an undo after each step that changed something; any failure
runs them in reverse, so a failed command leaves nothing behind. State is written
to the store only after the kernel side succeeded.

``Controller`` is the public API; it serialises operations and hands them to one
collaborator per kind of operation, all sharing one ``Core`` (store, hooks,
kernel, firewall, cluster, lock):

- ``networks.py``: create, delete, prune (and undoing an interrupted create);
- ``endpoints.py``: connect and disconnect one endpoint, the gateway election;
- ``publish.py``: published ports (host ports held, the driver's forwarding);
- ``sandboxes.py``: a container's stack, ``network connect/disconnect``, the gateway network;
- ``reconcile.py``: restart recovery (intents, orphans, restore) and the table watch;
- ``cluster_sync.py``: the cluster's networks and endpoints, kept in step.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from netcore import names
from netcore.controller.cluster_sync import ClusterSync
from netcore.controller.core import ENDPOINT, GLOBAL_IPAM, INTENT, NETWORK, SANDBOX, Core, log
from netcore.controller.deps import Deferrer, EngineFirewall
from netcore.controller.endpoints import Endpoints
from netcore.controller.networks import Networks, check_ipam_input
from netcore.controller.publish import Publisher
from netcore.controller.reconcile import Reconciler
from netcore.controller.sandboxes import Sandboxes
from netcore.errors import NetcoreError, NotFound
from netcore.ipam import DefaultIpam
from netcore.ipam.pools import global_pools
from netcore.models import GLOBAL, Attachment, DriverInfo, Endpoint, EngineContext, Network, PortBinding, Sandbox
from netcore.osl.kernel import HostKernel, Kernel
from netcore.plugins import Hooks, make_plugin_manager
from netcore.store import Store

if TYPE_CHECKING:
    from netcore.cluster import Cluster

__all__ = ["Controller", "on_host", "NETWORK", "ENDPOINT", "SANDBOX", "INTENT", "GLOBAL_IPAM"]

_check_ipam_input = check_ipam_input  # its unit tests' name for it


class Controller:
    """The public API of the core. Thread-safe: operations are serialised.

    Its collaborators come from the caller, so the same logic runs on the real kernel
    (``on_host``: SQLite, nftables, ``HostKernel``) or on fakes in unit tests
    (``MemoryStore``, ``NoFirewall``, ``FakeKernel``).
    """

    def __init__(
        self,
        root: str,
        store: Store,
        firewall: EngineFirewall,
        plugins: Iterable[tuple[str, object]] = (),
        autoload: bool = True,
        cluster: Cluster | None = None,
        kernel: Kernel | None = None,
        default_driver: str | None = None,
        essential: Iterable[str] = (),
    ) -> None:
        """``store``: local scope, and a cache of the cluster's networks; ``firewall``: the
        engine's table (``nft.Firewall`` or ``nftnone.NoFirewall``); ``kernel``: namespaces,
        links and routes (``HostKernel`` when not given: it keeps no state);
        ``default_driver``: the driver of ``create_network`` when none is named;
        ``essential``: plugins loaded from their entry points even with autoload off.
        Drivers are built here, one instance per controller, and stopped by ``close``."""
        kernel = kernel or HostKernel()
        ipam = DefaultIpam(store, kernel.host_prefixes)
        builtin: list[tuple[str, object]] = [("default", ipam)]
        global_ipam = None
        if cluster is not None:
            global_ipam = DefaultIpam(cluster.store, kernel.host_prefixes, pools=global_pools, space="GlobalDefault", lease=cluster.lease_id)
            builtin.append((GLOBAL_IPAM, global_ipam))
        hooks = Hooks(make_plugin_manager([*builtin, *plugins], autoload=autoload, essential=essential))
        self.core = core = Core(root, store, firewall, kernel, hooks, ipam, cluster=cluster, global_ipam=global_ipam)
        self.root, self.tag, self.store, self.firewall, self.kernel = root, core.tag, store, firewall, kernel
        self.cluster, self.ipam, self.global_ipam, self.hooks = cluster, ipam, global_ipam, hooks
        self.ports, self.lock = core.ports, core.lock
        self._networks = Networks(core, default_driver)
        self._endpoints = Endpoints(core, Publisher(core))
        self._sandboxes = Sandboxes(core, self._networks, self._endpoints)
        self._reconciler = Reconciler(core, self._networks, self._endpoints, self._sandboxes)
        self._cluster = ClusterSync(core, cluster, self._networks) if cluster is not None else None

    def start(self) -> None:
        """Set up the engine's table, hand plugins their context, reconcile store and kernel."""
        with self.lock:
            self.firewall.ensure()
            self.hooks.configure(EngineContext(root=self.root, tag=self.tag, firewall=self.firewall, cluster=self.cluster, store=self.store))
            joined = self._cluster.join() if self._cluster is not None else False
            self._reconciler.reconcile()
            self._reconciler.restore_endpoints()
            self._reconciler.watch_table()
            if self._cluster is not None:
                self._cluster.follow(joined)

    # ================================================================ lookups ====

    def networks(self) -> list[Network]:
        return self.core.networks()

    def network(self, ref: str) -> Network:
        """A network by name, id, or unique id prefix (like Docker)."""
        return self.core.network(ref)

    def endpoints(self, network: Network) -> list[Endpoint]:
        return self.core.endpoints(network)

    def sandbox(self, sandbox_id: str) -> Sandbox | None:
        return self.core.sandbox(sandbox_id)

    def sandbox_ids(self) -> list[str]:
        """Every sandbox on record (the runtime's reconcile finds those no container owns)."""
        return [s.id for s in self.core.sandboxes()]

    def sandbox_endpoints(self, sandbox: Sandbox) -> list[Endpoint]:
        return self.core.sandbox_endpoints(sandbox)

    def driver_info(self, driver: str) -> DriverInfo:
        return self.core.driver_info(driver)

    def drivers(self) -> list[str]:
        return self.hooks.drivers()

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
        ``create_network`` -> store -> ``network_created``. ``driver`` defaults to the
        controller's ``default_driver``."""
        with self.lock:
            return self._networks.create(
                name, driver, subnet=subnet, gateway=gateway, ip_range=ip_range, options=options, labels=labels,
                internal=internal, ipam_driver=ipam_driver, predefined=predefined, attachable=attachable,
                aux_addresses=aux_addresses,
            )

    def delete_network(self, ref: str, force: bool = False) -> Network:
        """Refused for predefined networks and networks with endpoints (unless ``force``)."""
        with self.lock:
            return self._networks.delete(ref, force=force)

    def prune_networks(self) -> list[str]:
        """Remove every user network without endpoints; returns their names."""
        with self.lock:
            return self._networks.prune()

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
            return self._sandboxes.setup(
                sandbox_id, name, attachments, hostname=hostname, dns_servers=dns_servers, ports=ports, netns_path=netns_path
            )

    def teardown_sandbox(self, sandbox_id: str, defer: Deferrer | None = None) -> None:
        """Every endpoint leaves, the netns goes. Best-effort; a missing sandbox is fine.
        ``defer``: see ``disconnect``."""
        with self.lock, self.kernel.session():
            sandbox = self.sandbox(sandbox_id)
            if sandbox is not None:
                self._sandboxes.teardown(sandbox, defer)

    def connect(
        self, network_ref: str, sandbox_id: str, ip: str | None = None, aliases: Iterable[str] = (), gw_priority: int = 0,
        ifname: str = "",
    ) -> Endpoint:
        """Put a running sandbox on one more network (``network connect``); ``ifname``: its name inside, else the next ethN."""
        with self.lock, self.kernel.session():
            return self._sandboxes.connect(network_ref, sandbox_id, ip, aliases, gw_priority, ifname)

    def publish_ports(self, network_ref: str, sandbox_id: str, ports: Iterable[PortBinding]) -> Endpoint:
        """Publish ``ports`` through the sandbox's endpoint on that network, not through its
        default route: CNI's ``portMappings`` belong to one ADD (one attachment) and go with
        its DEL (``disconnect`` unpublishes). All or nothing; an endpoint publishes once."""
        with self.lock, self.kernel.session():
            return self._endpoints.publish_ports(self.network(network_ref), sandbox_id, list(ports))

    def disconnect(self, network_ref: str, sandbox_id: str, defer: Deferrer | None = None) -> Endpoint:
        """Take the sandbox off one network. ``defer``: the driver's ``leave`` and
        ``delete_endpoint`` are handed to it, to run after this returns (the records, the
        address and the published ports are gone already): a caller that must not wait for
        the kernel to delete the interface (CNI's DEL) runs them on a worker, under the lock."""
        with self.lock, self.kernel.session():
            return self._sandboxes.disconnect(network_ref, sandbox_id, defer)

    # ================================================================ lifecycle ==

    def reconcile(self) -> None:
        """Make kernel and store agree after a restart (see ``reconcile.py``)."""
        with self.lock:
            self._reconciler.reconcile()

    def reset(self) -> None:
        """Remove everything this engine made: sandboxes, networks (predefined too), its table."""
        self._reconciler.stop_table_watch()  # the table goes on purpose
        with self.lock:
            for sandbox in self.core.sandboxes():
                try:
                    self._sandboxes.teardown(sandbox)
                except NetcoreError as exc:
                    log.warning("%s", exc)
            for net in self.networks():
                try:
                    if net.scope == GLOBAL:
                        self._networks.forget(net)  # the cluster's: other hosts may use it
                    else:
                        self._networks.delete(net.id, force=True)
                except NetcoreError as exc:
                    log.warning("%s", exc)
            self.firewall.delete()
            self._reconciler.reconcile()

    def close(self) -> None:
        """Stop; the containers and their endpoints stay (the lease is left to lapse, not revoked:
        an engine restarted within its TTL takes its endpoints over without a gap).
        Every plugin's ``shutdown`` runs: drivers stop their threads there."""
        self._reconciler.stop_table_watch(closing=True)
        self.hooks.notify("shutdown")
        if self._cluster is not None:
            self._cluster.close()
        self.firewall.close()
        self.store.close()


def on_host(root: str, **kwargs: Any) -> Controller:
    """A controller on the real kernel: its SQLite store and nftables table under ``root``
    (what the daemon and the root tests run)."""
    from netcore.osl.nft import Firewall
    from netcore.store import open_store

    return Controller(root, store=open_store(root), firewall=Firewall(names.table_name(root)), kernel=HostKernel(), **kwargs)
