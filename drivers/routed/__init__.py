"""The routed driver: Calico-like L3 networking, no bridge, no encapsulation.

Each container gets a /32 from a per-host block of the network's pool, a veth whose
host end answers ARP for 169.254.1.1 (proxy ARP) and a /32 route on the host
(``dataplane.py``). Hosts route whole blocks to each other: ``routing=store`` (the
default) has every engine watch the block records in the cluster store and program
``<block> via <owner>``; ``routing=bgp`` has every engine run BIRD 2 (``bird.py``)
in an iBGP full mesh. Each host blackholes its own blocks.

The plugin is also the network's IPAM (``DriverInfo.ipam``): pools come from the
default IPAM's records (so they never overlap other networks), addresses from
per-host blocks (``blocks.py``). Data scope: global in a cluster (the network, its
pool and its blocks in etcd), local on a single host (SQLite); the driver works in
both.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from typing import Any

from netcore import (
    GLOBAL,
    LOCAL,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    InvalidConfig,
    JoinInfo,
    Network,
    NetcoreError,
    Pool,
    Sandbox,
    StaticRoute,
    Step,
    hookimpl,
    names,
    run_steps,
    undo_steps,
)
from netcore.backoff import Backoff
from netcore.ipam import GATEWAY_REQUEST, DefaultIpam
from netcore.ipam.pools import default_pools, global_pools
from netcore.osl import addrs

from drivers.routed import dataplane, firewall
from drivers.routed.bird import Bird, render
from drivers.routed.blocks import BLOCK, Block, BlockIpam
from drivers.routed.plan import BGP, GATEWAY, STORE, RoutedPlan, plan_network

__all__ = ["RoutedDriver"]

log = logging.getLogger("netcore.routed")
NAME = "routed"


class RoutedDriver:
    def __init__(self) -> None:
        self.ctx: EngineContext | None = None
        self.lock = threading.RLock()
        self._known: dict[str, Block] = {}  # cluster: every block record, from the watch
        self._stopping = threading.Event()  # set by shutdown: background threads end
        self._threads: list[threading.Thread] = []

    # ================================================================ engine ====

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.ctx = context
        self._known = {}
        self.bird = Bird(os.path.join(context.root, "routed"))
        if context.cluster is not None:
            self.me = context.cluster.advertise
            store = context.cluster.store
            self.pools = DefaultIpam(store, addrs.host_prefixes, pools=global_pools, space="GlobalDefault")
        else:
            self.me = "local"
            store = context.store
            self.pools = DefaultIpam(store, addrs.host_prefixes, pools=default_pools, space="LocalDefault")
        self.blocks = BlockIpam(store, self.me)
        if context.cluster is not None and store is not None:
            try:
                self._watch_cluster()
            except NetcoreError as exc:  # etcd away at start: the routes already in the kernel stay
                log.warning("routed: %s; watching blocks once it answers", exc)
                thread = threading.Thread(target=self._watch_later, name="routed-watch-later", daemon=True)
                self._threads.append(thread)
                thread.start()

    def _watch_cluster(self) -> None:
        """Every block claimed in the cluster, then every change: routes follow (store mode)."""
        cluster = self.ctx.cluster  # type: ignore[union-attr]
        with self.lock:
            snapshot = cluster.watch(BLOCK, self._on_block)
            self._known = {b.id: b for b in map(Block.from_dict, snapshot)}
            self._sync_all_routes()
        cluster.watch("node", lambda *_: self._on_node())

    def _watch_later(self) -> None:
        delays = Backoff(0.5, 10.0)
        while not delays.wait(self._stopping):
            try:
                self._watch_cluster()
                return
            except NetcoreError as exc:
                log.debug("routed: cluster still away: %s", exc)

    @hookimpl
    def shutdown(self) -> None:
        """The engine stops: end the background threads (BIRD itself keeps routing)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    @hookimpl
    def driver_info(self) -> DriverInfo:
        scope = GLOBAL if self.ctx is not None and self.ctx.cluster is not None else LOCAL
        return DriverInfo(name=NAME, data_scope=scope, connectivity_scope=scope, ipam=NAME)

    def _fw(self) -> Any:
        assert self.ctx is not None, "routed driver used before configure()"
        return self.ctx.firewall

    def _plan(self, network: Network) -> RoutedPlan:
        return plan_network(network)

    def _plan_of(self, network_id: str) -> RoutedPlan:
        data = self.ctx.store.get("network", network_id)  # type: ignore[union-attr]
        if data is None:
            raise InvalidConfig(f"network {network_id[:12]} is not known on this host")
        return plan_network(Network.from_dict(data))

    def _network_of_pool(self, pool_id: str) -> str:
        rec = self.pools.store.get("pool", pool_id)
        if rec is None:
            raise InvalidConfig(f"address pool {pool_id} not found")
        return rec["network_id"]

    # ================================================================ IPAM ======

    @hookimpl
    def request_pool(self, network_id: str, subnet: str | None, ip_range: str | None, options: dict[str, str]) -> Pool:
        if ip_range:
            raise InvalidConfig("routed networks hand out addresses from per-host blocks of the whole subnet: --ip-range is not supported")
        pool = self.pools.request_pool(network_id=network_id, subnet=subnet, ip_range=None, options=options)
        return Pool(pool_id=pool.pool_id, subnet=pool.subnet, gateway=GATEWAY)

    @hookimpl
    def release_pool(self, pool_id: str) -> None:
        rec = self.pools.store.get("pool", pool_id)
        if rec is not None:
            with self.lock:
                for blk in self.blocks.release_network(rec["network_id"]):
                    self._block_gone(blk)
        self.pools.release_pool(pool_id=pool_id)

    @hookimpl
    def request_address(self, pool_id: str, address: str | None, options: dict[str, str]) -> str:
        if options.get("RequestAddressType") == GATEWAY_REQUEST["RequestAddressType"]:
            if address not in (None, GATEWAY):
                raise InvalidConfig(f"routed networks have no gateway in their subnet (containers route via {GATEWAY}): --gateway is not supported")
            return GATEWAY
        network_id = self._network_of_pool(pool_id)
        plan = self._plan_of(network_id)
        got: dict[str, Any] = {}  # the address and the block claimed for it (None: a block of ours had room)

        def allocate(_: Any) -> None:
            got["ip"], got["claimed"] = self.blocks.allocate(network_id, plan.subnet, plan.block_size, plan.routing, address)

        def release(_: Any) -> None:  # the block's route goes too if it was half made
            self.blocks.release(network_id, got["ip"], plan.block_size)
            if got["claimed"] is not None:
                self._block_gone(got["claimed"])

        with self.lock:
            run_steps((
                Step("routed.address", allocate, release),
                Step("routed.block", lambda _: self._block_added(got["claimed"]), when=lambda _: got["claimed"] is not None),
            ), None)
            return got["ip"]

    @hookimpl
    def release_address(self, pool_id: str, address: str) -> None:
        if address == GATEWAY:
            return
        network_id = self._network_of_pool(pool_id)
        plan = self._plan_of(network_id)
        with self.lock:
            gone = self.blocks.release(network_id, address, plan.block_size)
            if gone is not None:
                self._block_gone(gone)

    # ================================================================ blocks ====

    def _block_added(self, blk: Block) -> None:
        """A block claimed (here or elsewhere): its route, its pool in the isolation set, BIRD."""
        fw = self._fw()
        fw.apply(firewall.pool_known(blk.subnet, fw.family, fw.table))
        if blk.host == self.me:
            dataplane.route_block(blk.block, None)
        elif blk.routing == STORE:
            dataplane.route_block(blk.block, blk.host)
        if self.ctx.cluster is not None:  # type: ignore[union-attr]
            self._known[blk.id] = blk
            if blk.routing == BGP:
                self._sync_bird()

    def _block_gone(self, blk: Block) -> None:
        dataplane.unroute_block(blk.block)
        if self.ctx.cluster is not None:  # type: ignore[union-attr]
            self._known.pop(blk.id, None)
            if blk.routing == BGP:
                self._sync_bird()

    def _on_block(self, event: str, ident: str, data: dict[str, Any] | None) -> None:
        with self.lock:
            try:
                if event == "put" and data is not None:
                    self._block_added(Block.from_dict(data))
                elif event == "delete":
                    blk = self._known.get(ident)
                    if blk is not None:
                        self._block_gone(blk)
                    else:
                        dataplane.unroute_block(ident.split("/", 1)[1])
            except Exception:
                log.exception("routed: block event %s %s", event, ident)

    def _on_node(self) -> None:
        with self.lock:
            try:
                if self.bird.running():
                    self._sync_bird()
            except Exception:
                log.exception("routed: node event")

    def _sync_all_routes(self) -> None:
        """Engine start in a cluster: block routes exactly as the store says (none stale)."""
        scope = {b.subnet for b in self._known.values()} | {self._plan(n).subnet for n in self._local_networks()}
        wanted = {b.block: None if b.host == self.me else b.host for b in self._known.values() if b.host == self.me or b.routing == STORE}
        if scope:
            dataplane.sync_blocks(sorted(scope), wanted)
        fw = self._fw()
        for subnet in sorted(scope):
            fw.apply(firewall.pool_known(subnet, fw.family, fw.table))
        self._sync_bird()

    def _sync_network_routes(self, plan: RoutedPlan) -> None:
        blocks = self.blocks.blocks(plan.network_id)
        wanted = {b.block: None if b.host == self.me else b.host for b in blocks if b.host == self.me or plan.routing == STORE}
        dataplane.sync_blocks([plan.subnet], wanted)

    def _local_networks(self) -> list[Network]:
        return [n for n in (Network.from_dict(d) for d in self.ctx.store.list("network")) if n.driver == NAME]  # type: ignore[union-attr]

    # ================================================================ BIRD ======

    def _sync_bird(self, without: str | None = None) -> None:
        """Run BIRD with the current blocks, pools and peers while a bgp network exists; stop it after."""
        if self.ctx is None or self.ctx.cluster is None:
            return
        pools: dict[str, int] = {}
        for net in self._local_networks():
            if net.id == without:
                continue
            try:
                plan = self._plan(net)
            except NetcoreError:
                continue
            if plan.routing == BGP:
                pools[plan.subnet] = plan.block_size
        for b in self._known.values():
            if b.routing == BGP and b.network_id != without:
                pools.setdefault(b.subnet, int(b.block.split("/")[1]))
        if not pools:
            if self.bird.running():
                self.bird.stop()
            return
        mine = [b.block for b in self._known.values() if b.routing == BGP and b.host == self.me and b.network_id != without]
        peers = [n for n in self.ctx.cluster.nodes() if n != self.me]
        self.bird.apply(render(self.me, mine, sorted(pools.items()), peers, self.bird.log))

    # ================================================================ network ===

    def _network_steps(self, network: Network) -> tuple[Step, ...]:
        """A network's kernel work: its chains, its block routes as the store says, BIRD (routing=bgp)."""
        fw = self._fw()
        return (
            Step("routed.firewall", lambda p: fw.apply(firewall.program(p, fw.family, fw.table)), self._unprogram),
            Step("routed.routes", self._sync_network_routes, self._unroute_network),
            Step("routed.bird", lambda p: self._sync_bird_for(network), lambda p: self._sync_bird(without=p.network_id),
                 when=lambda p: p.routing == BGP),
        )

    def _unprogram(self, plan: RoutedPlan) -> None:
        fw = self._fw()
        fw.apply(firewall.unprogram(plan, fw.family, fw.table, _chains(fw)))
        try:  # a pool learned from another host's blocks, without chains here
            fw.apply(firewall.pool_forgotten(plan.subnet, fw.family, fw.table))
        except NetcoreError:
            pass

    def _unroute_network(self, plan: RoutedPlan) -> None:
        dataplane.sync_blocks([plan.subnet], {})
        for ident in [i for i, b in self._known.items() if b.network_id == plan.network_id]:
            del self._known[ident]

    @hookimpl
    def create_network(self, network: Network) -> None:
        plan = self._plan(network)  # options checked before anything changes
        if network.ipam_driver != NAME:
            raise InvalidConfig(f"routed networks take their addresses from per-host blocks: --ipam-driver {network.ipam_driver} is not supported")
        if plan.routing == BGP and self.ctx.cluster is None:  # type: ignore[union-attr]
            raise InvalidConfig("routing=bgp needs a cluster (--cluster-store, --cluster-advertise): a single host has no one to peer with")
        with self.lock:
            run_steps(self._network_steps(network), plan)

    def _sync_bird_for(self, network: Network) -> None:
        """Like _sync_bird, with ``network`` counted although it is not stored yet."""
        plan = self._plan(network)
        mine = [b.block for b in self._known.values() if b.routing == BGP and b.host == self.me]
        pools = {plan.subnet: plan.block_size}
        for net in self._local_networks():
            p = self._plan(net)
            if p.routing == BGP:
                pools[p.subnet] = p.block_size
        for b in self._known.values():
            if b.routing == BGP:
                pools.setdefault(b.subnet, int(b.block.split("/")[1]))
        peers = [n for n in self.ctx.cluster.nodes() if n != self.me]  # type: ignore[union-attr]
        self.bird.apply(render(self.me, mine, sorted(pools.items()), peers, self.bird.log))

    @hookimpl
    def restore_network(self, network: Network) -> None:
        """After a restart: chains, local containers' elements and routes, block routes, BIRD."""
        plan = self._plan(network)
        fw = self._fw()
        fw.apply(firewall.program(plan, fw.family, fw.table))
        local = [Endpoint.from_dict(d) for d in self.ctx.store.list("endpoint", parent=network.id)]  # type: ignore[union-attr]
        with self.lock:
            for ep in local:
                if ep.ip and dataplane.port_exists(ep.id):
                    dataplane.route_port(ep)  # idempotent: after a restart
                    fw.apply(firewall.attach(plan, names.veth_name(ep.id), fw.family, fw.table))
            if local:
                dataplane.ensure_gateway_route()
            self._sync_network_routes(plan)
            if plan.routing == BGP:
                self._sync_bird()

    @hookimpl
    def delete_network(self, network: Network) -> None:
        with self.lock:
            undo_steps(self._network_steps(network), self._plan(network), f"delete network {network.name}")

    # ================================================================ endpoint ==

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        if not endpoint.address:
            raise InvalidConfig("a routed endpoint needs an address")
        endpoint.address = f"{endpoint.ip}/32"  # a /32 of its own: everything else is routed via 169.254.1.1
        return InterfaceInfo.mac_from_ip(endpoint)

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        return None

    def _join_steps(self, network: Network, endpoint: Endpoint, sandbox: Sandbox | None, teardown: bool = False) -> tuple[Step, ...]:
        """A container's kernel work: the veth (its undo also drops the gateway route once unused),
        its /32 route, its place in the network's chains, the gateway route.
        On ``teardown`` the veth goes with the container's netns: only its /32 route goes now,
        so the host stops routing to it and the gateway route check does not count it."""
        fw, veth = self._fw(), names.veth_name(endpoint.id)

        def add_port(p: RoutedPlan) -> None:
            dataplane.add_port(self.ctx.tag, endpoint, sandbox.netns_path, p.mtu)  # type: ignore[union-attr]

        def remove_port(p: RoutedPlan) -> None:
            if teardown:
                dataplane.unroute_port(endpoint)
            else:
                dataplane.remove_port(endpoint.id)
            dataplane.drop_gateway_route_if_unused()

        return (
            # idempotent, no undo: a host that learned of the network late
            Step("routed.chains", lambda p: fw.apply(firewall.program(p, fw.family, fw.table))),
            Step("routed.veth", add_port, remove_port),
            Step("routed.port-route", lambda p: dataplane.route_port(endpoint)),  # goes with the veth
            Step("routed.attach", lambda p: fw.apply(firewall.attach(p, veth, fw.family, fw.table)), lambda p: self._detach(veth)),
            Step("routed.gateway-route", lambda p: dataplane.ensure_gateway_route()),  # the veth's undo drops it
        )

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        plan = self._plan(network)
        run_steps(self._join_steps(network, endpoint, sandbox), plan)
        if plan.internal:  # no default route: only the pool, through the same proxy-ARP gateway
            return JoinInfo(created_in_sandbox=True, static_routes=(StaticRoute(f"{GATEWAY}/32"), StaticRoute(plan.subnet, GATEWAY)))
        return JoinInfo(created_in_sandbox=True, gateway=GATEWAY)

    def _detach(self, veth: str) -> None:
        fw = self._fw()
        for c in firewall.detach(veth, fw.family, fw.table):
            try:
                fw.apply([c])
            except NetcoreError:
                pass  # already gone

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        steps = self._join_steps(network, endpoint, sandbox, teardown)
        undo_steps(steps, self._plan(network), f"leave network {network.name}")

    @hookimpl
    def program_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        if endpoint.ports and endpoint.ip:
            self._fw().publish(endpoint.ip, endpoint.ports)

    @hookimpl
    def revoke_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        if endpoint.ports:
            self._fw().unpublish(endpoint.ports)

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
        plan = self._plan(network)
        out: dict[str, Any] = {"host_interface": names.veth_name(endpoint.id), "gateway": GATEWAY}
        if endpoint.ip:
            out["block"] = str(ipaddress.IPv4Network(f"{endpoint.ip}/{plan.block_size}", strict=False))
        return out

    @hookimpl
    def network_oper_info(self, network: Network) -> dict[str, Any] | None:
        plan = self._plan(network)
        out: dict[str, Any] = {
            "Routing": plan.routing,
            "BlockSize": plan.block_size,
            "NatOutgoing": plan.nat_outgoing,
            "Blocks": [{"Block": b.block, "Host": b.host} for b in self.blocks.blocks(network.id)],
        }
        if plan.routing == BGP and self.ctx.cluster is not None:  # type: ignore[union-attr]
            sessions = self.bird.sessions()
            out["Peers"] = [
                {"Address": n, "State": sessions.get(n, {}).get("info") or sessions.get(n, {}).get("state") or "no session"}
                for n in self.ctx.cluster.nodes()  # type: ignore[union-attr]
                if n != self.me
            ]
        return out


def _chains(fw: Any) -> set[str]:
    return {o["chain"]["name"] for o in fw.list() if "chain" in o}
