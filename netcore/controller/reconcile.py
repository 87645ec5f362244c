"""Reconcile: make kernel and store agree after a restart, and after the engine's table was deleted.

At start: operations a killed engine left half done (their intent notes) are
undone (create, connect) or finished (disconnect); stored networks are restored
by their drivers; sandboxes whose netns is gone lose their endpoints; links and
namespaces carrying this engine's tag but no record are removed; published
ports are held and programmed again, and observers hear of every endpoint.
While running: a watch on the engine's nftables table puts it back if deleted.
"""

from __future__ import annotations

from netcore import names
from netcore.controller.core import ENDPOINT, INTENT, NETWORK, SANDBOX, Core, log
from netcore.controller.deps import TableWatch
from netcore.controller.endpoints import Endpoints
from netcore.controller.networks import Networks
from netcore.controller.sandboxes import Sandboxes
from netcore.errors import NetcoreError
from netcore.models import Endpoint, Network, Sandbox

__all__ = ["Reconciler"]


class Reconciler:
    def __init__(self, core: Core, networks: Networks, endpoints: Endpoints, sandboxes: Sandboxes) -> None:
        self.core = core
        self.networks = networks
        self.endpoints = endpoints
        self.sandboxes = sandboxes
        self._table_watch: TableWatch | None = None
        self._closed = False

    def reconcile(self) -> None:
        """Undo what a killed engine left half done; restore networks; remove orphans (under the lock)."""
        core = self.core
        self.undo_intents()
        core.restore_networks(core.networks())
        for sandbox in core.sandboxes():
            if sandbox.netns_path and not core.kernel.netns_exists(sandbox.netns_path):
                try:
                    self.sandboxes.teardown(sandbox)
                except NetcoreError as exc:
                    log.warning("%s", exc)
        known = {d["id"] for d in core.store.list(NETWORK)} | {d["id"] for d in core.store.list(ENDPOINT)}
        for link, alias in core.kernel.owned_links(f"netcore:{core.tag}:"):
            parsed = names.parse_link_alias(alias)
            if parsed and parsed[1] not in known:
                log.info("reconcile: removing orphan link %s", link)
                core.kernel.delete_link(link)
        paths = {d.get("netns_path") for d in core.store.list(SANDBOX)}
        for name in core.kernel.netns_names():
            path = f"{core.kernel.netns_dir}/{name}"
            if names.is_sandbox_netns(name, core.tag) and path not in paths:
                log.info("reconcile: removing orphan netns %s", name)
                core.kernel.delete_netns(path)

    def undo_intents(self) -> None:
        """Roll back every operation a killed engine left half done (at start, before anything else)."""
        store = self.core.store
        for data in store.list(INTENT):
            op = data.get("op")
            try:
                if op == "create_network":
                    self.networks.undo_create(Network.from_dict(data["network"]))
                elif op == "connect":
                    self.endpoints.undo_connect(Endpoint.from_dict(data["endpoint"]), Sandbox.from_dict(data["sandbox"]))
                elif op == "disconnect":
                    self.endpoints.finish_disconnect(Endpoint.from_dict(data["endpoint"]), Sandbox.from_dict(data["sandbox"]))
                else:
                    log.warning("reconcile: unknown intent %r", op)
            except Exception as exc:  # one bad note must not stop the engine from starting
                log.warning("reconcile: undo %s: %s", op, exc)
            ident = (data.get("network") or data.get("endpoint") or {}).get("id", "")
            store.delete(INTENT, ident)

    def restore_endpoints(self) -> None:
        """After reconcile at start: published ports held and programmed again; observers told of every endpoint."""
        core = self.core
        stored = [(ep.ip, b) for sandbox in core.sandboxes() for ep in core.sandbox_endpoints(sandbox) if ep.ip for b in ep.ports]
        try:
            if core.firewall.prune_ports(stored):
                log.info("reconcile: removed published ports that no container holds")
        except NetcoreError as exc:
            log.warning("reconcile: published ports: %s", exc)
        core.republish_ports(hold=True)  # the driver re-programs idempotently
        for sandbox in core.sandboxes():
            for ep in core.sandbox_endpoints(sandbox):
                net = core.network(ep.network_id)
                core.hooks.notify("endpoint_restored", network=net, endpoint=ep, sandbox=sandbox)

    # ------------------------------------------------------------ the table watch

    def watch_table(self) -> None:
        self._table_watch = self.core.firewall.watch(self._table_gone)

    def stop_table_watch(self, closing: bool = False) -> None:
        """Stop watching (``reset``: the table goes on purpose; ``closing``: for good)."""
        self._closed = self._closed or closing
        watch, self._table_watch = self._table_watch, None
        if watch is not None:
            watch.stop()

    def _table_gone(self) -> None:
        """Someone deleted the engine's nftables table (``nft flush ruleset``): put it back
        from the store, as a restart would, while the containers keep running."""
        core = self.core
        with core.lock:
            if self._closed or self._table_watch is None or core.firewall.exists():
                return
            log.warning("nftables table %s was deleted: restoring isolation and published ports", core.firewall.table)
            core.firewall.ensure()
            core.restore_networks(core.networks())
            core.republish_ports(hold=False)
