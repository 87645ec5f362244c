"""Endpoints: one sandbox on one network, and which endpoint gives the sandbox its default route.

A connect is IPAM ``request_address`` -> ``create_endpoint`` -> ``join`` -> core
addressing of the interface -> cluster -> gateway election -> store ->
``endpoint_joined``, each step with its undo. A disconnect is the reverse and
best-effort: ``leave`` -> ``delete_endpoint`` -> ``release_address`` -> store,
every failure reported as one ``TeardownIncomplete``.
"""

from __future__ import annotations

import ipaddress

from netcore import interfaces, names
from netcore.controller.core import ENDPOINT, INTENT, NETWORK, SANDBOX, Core, log
from netcore.controller.publish import Publisher
from netcore.errors import AlreadyExists, Conflict, InvalidConfig, NetcoreError, NotFound, TeardownIncomplete
from netcore.models import Attachment, Endpoint, Network, PortBinding, Sandbox
from netcore.steps import Transaction, pause_point
from netcore.controller.deps import Deferrer

__all__ = ["Endpoints"]


class Endpoints:
    """The endpoint operations of one controller. Callers hold ``core.lock``."""

    def __init__(self, core: Core, publisher: Publisher) -> None:
        self.core = core
        self.publisher = publisher

    def check_attachment(self, net: Network, att: Attachment) -> None:
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
            cluster = self.core.cluster_of(net)
            others = cluster.endpoints(net.id) if cluster is not None else self.core.endpoints(net)
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

    def connect(self, net: Network, sandbox: Sandbox, att: Attachment) -> Endpoint:
        core = self.core
        store = core.store
        drv = core.hooks.driver(net.driver)
        used = {e.ifname for e in core.sandbox_endpoints(sandbox)}
        if att.ifname in used:
            raise AlreadyExists(f"{sandbox.name or sandbox.id[:12]} already has an interface {att.ifname}")
        ifname = att.ifname or next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        ep = Endpoint(id=names.new_id(), network_id=net.id, name=sandbox.name, sandbox_id=sandbox.id, ifname=ifname, aliases=list(att.aliases), gw_priority=att.gw_priority, mac=att.mac)
        with Transaction(f"connect {sandbox.name} to {net.name}") as tx:
            if net.pool_id:
                tx.step("endpoint.ipam")
                ipam = core.ipam_of(net)
                with store.transaction():  # the address and the intent to undo it, together
                    ip = ipam.request_address(pool_id=net.pool_id, address=att.ip, options={})
                    tx.push("ipam.address", lambda: ipam.release_address(pool_id=net.pool_id, address=ip))
                    ep.address = f"{ip}/{net.prefixlen}"
                    core.intend(ep.id, "connect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
            else:
                core.intend(ep.id, "connect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
            tx.push("intent", lambda: store.delete(INTENT, ep.id))
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
                interfaces.configure(core.kernel, sandbox, ep, join)
            cluster = core.cluster_of(net)
            if cluster is not None:
                tx.step("endpoint.cluster")
                ep.host = cluster.advertise
                ep.dns_names = list(dict.fromkeys(n for n in (sandbox.name, *ep.aliases, sandbox.hostname, sandbox.id[:12]) if n))
                cluster.publish(ep)
                tx.push("endpoint.cluster", lambda: cluster.withdraw(ep.id))
            previous = sandbox.gateway_endpoint
            changed = self.elect_gateway(sandbox, [*core.sandbox_endpoints(sandbox), ep], tx)
            tx.push("sandbox.gateway", lambda: setattr(sandbox, "gateway_endpoint", previous))
            tx.step("endpoint.store")
            with store.transaction():
                store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id, create=True)
                store.delete(INTENT, ep.id)
                for other in changed:
                    if other.id != ep.id:
                        store.put(ENDPOINT, other.id, other.to_dict(), parent=other.network_id)
                sandbox.endpoints.append(ep.id)
                store.put(SANDBOX, sandbox.id, sandbox.to_dict())
        core.hooks.notify("endpoint_joined", network=net, endpoint=ep, sandbox=sandbox)
        return ep

    def elect_gateway(self, sandbox: Sandbox, endpoints: list[Endpoint], tx: Transaction) -> list[Endpoint]:
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
        kernel, publisher = self.core.kernel, self.publisher
        tx.step("endpoint.gateway")
        interfaces.set_default_route(kernel, sandbox, best)
        if current is not None:
            tx.push("endpoint.gateway", lambda: interfaces.set_default_route(kernel, sandbox, current))
            old_net, old_ports = self.core.network(current.network_id), list(current.ports)
            publisher.unpublish(old_net, current, sandbox)
            tx.push("endpoint.unpublish", lambda: publisher.publish(old_net, current, sandbox, old_ports))
        sandbox.gateway_endpoint = best.id
        publisher.publish(self.core.network(best.network_id), best, sandbox, sandbox.ports, tx)
        return [e for e in (current, best) if e is not None]

    def publish_ports(self, net: Network, sandbox_id: str, ports: list[PortBinding]) -> Endpoint:
        """See ``Controller.publish_ports``."""
        core = self.core
        sandbox = core.sandbox(sandbox_id)
        ep = next((e for e in core.sandbox_endpoints(sandbox) if e.network_id == net.id), None) if sandbox else None
        if sandbox is None or ep is None:
            raise NotFound(f"container {sandbox_id[:12]} is not connected to network {net.name}")
        if ep.ports:
            raise Conflict(f"endpoint {ep.name} on {net.name} already publishes ports")
        with Transaction(f"publish ports of {sandbox.name} on {net.name}") as tx:
            self.publisher.publish(net, ep, sandbox, ports, tx)
            core.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=ep.network_id)
        return ep

    def disconnect(
        self, net: Network, sandbox: Sandbox, ep: Endpoint, teardown: bool = False, defer: Deferrer | None = None
    ) -> None:
        """Undo ``connect``. ``teardown``: the whole sandbox goes and its netns is deleted next,
        so the default route is not handed on and the driver may leave the interface to the
        kernel (see the ``leave`` hook). A kill -9 half way is finished by reconcile (its intent)."""
        core = self.core
        errors: list[BaseException] = []
        core.intend(ep.id, "disconnect", endpoint=ep.to_dict(), sandbox=sandbox.to_dict())
        try:
            drv = core.hooks.driver(net.driver)
            leave = lambda: drv.leave(network=net, endpoint=ep, sandbox=sandbox, teardown=teardown)  # noqa: E731
            delete = lambda: drv.delete_endpoint(network=net, endpoint=ep)  # noqa: E731
            if defer is not None:  # the caller runs the driver's part later (see Controller.disconnect)
                defer(lambda: (leave(), delete()))
            for point, step in (
                ("endpoint.unpublish", lambda: self.publisher.unpublish(net, ep, sandbox)),
                *((("endpoint.leave", leave), ("endpoint.delete", delete)) if defer is None else ()),
            ):
                pause_point(point)
                try:
                    step()
                except Exception as exc:
                    errors.append(exc)
        except NotFound as exc:
            errors.append(exc)
        cluster = core.cluster_of(net)
        if cluster is not None:
            try:
                cluster.withdraw(ep.id)
            except Exception as exc:
                errors.append(exc)
        pause_point("endpoint.release")
        if net.pool_id and ep.ip:
            try:
                core.ipam_of(net).release_address(pool_id=net.pool_id, address=ep.ip)
            except Exception as exc:
                errors.append(exc)
        pause_point("endpoint.forget")
        with core.store.transaction():
            core.store.delete(ENDPOINT, ep.id)
            core.store.delete(INTENT, ep.id)
            if ep.id in sandbox.endpoints:
                sandbox.endpoints.remove(ep.id)
            if core.store.get(SANDBOX, sandbox.id) is not None:
                core.store.put(SANDBOX, sandbox.id, sandbox.to_dict())
        core.hooks.notify("endpoint_left", network=net, endpoint=ep, sandbox=sandbox)
        if ep.id == sandbox.gateway_endpoint and not teardown:
            self.reelect_gateway(sandbox)
        if errors:
            raise TeardownIncomplete(f"disconnect {ep.name} from {net.name}", errors)

    def reelect_gateway(self, sandbox: Sandbox) -> None:
        """The default route left with its endpoint: hand it on (best-effort; the disconnect stands)."""
        core = self.core
        sandbox.gateway_endpoint = ""
        if sandbox.netns_path and core.kernel.netns_exists(sandbox.netns_path):
            try:
                with Transaction(f"move the default route of {sandbox.name}") as tx:
                    for ep in self.elect_gateway(sandbox, core.sandbox_endpoints(sandbox), tx):
                        core.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=ep.network_id)
            except NetcoreError as exc:
                log.warning("%s: %s", sandbox.name, exc)
                sandbox.gateway_endpoint = ""
        if core.store.get(SANDBOX, sandbox.id) is not None:
            core.store.put(SANDBOX, sandbox.id, sandbox.to_dict())

    def undo_connect(self, ep: Endpoint, sandbox: Sandbox) -> None:
        """Reconcile: roll back a connect a killed engine left half done."""
        core = self.core
        log.info("reconcile: undoing the interrupted connect of %s", ep.name)
        if core.store.get(ENDPOINT, ep.id) is not None:
            return  # committed after all
        data = core.store.get(NETWORK, ep.network_id)
        net = Network.from_dict(data) if data else None
        if net is not None:
            drv = core.hooks.driver(net.driver)
            for undo in (
                lambda: drv.revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox),
                lambda: drv.leave(network=net, endpoint=ep, sandbox=sandbox, teardown=False),
                lambda: drv.delete_endpoint(network=net, endpoint=ep),
            ):
                try:
                    undo()
                except Exception as exc:
                    log.warning("reconcile: %s", exc)
            cluster = core.cluster_of(net)
            if cluster is not None:
                cluster.withdraw(ep.id)
            if net.pool_id and ep.ip:
                core.ipam_of(net).release_address(pool_id=net.pool_id, address=ep.ip)
        current = core.sandbox(sandbox.id)
        if current is not None and current.netns_path and core.kernel.netns_exists(current.netns_path):
            gw = next((e for e in core.sandbox_endpoints(current) if e.id == current.gateway_endpoint), None)
            if gw is not None:  # the connect may have moved the default route to its own interface
                interfaces.set_default_route(core.kernel, current, gw)

    def finish_disconnect(self, ep: Endpoint, sandbox: Sandbox) -> None:
        """Reconcile: a disconnect (or a container's teardown) was under way: finish it; every step is idempotent."""
        core = self.core
        log.info("reconcile: finishing the interrupted disconnect of %s", ep.name)
        data = core.store.get(ENDPOINT, ep.id)
        if data is None:
            return
        ep = Endpoint.from_dict(data)
        net_data = core.store.get(NETWORK, ep.network_id)
        sandbox = core.sandbox(sandbox.id) or sandbox
        if net_data is None:
            core.store.delete(ENDPOINT, ep.id)
            return
        try:
            self.disconnect(Network.from_dict(net_data), sandbox, ep)
        except TeardownIncomplete as exc:  # what is left is gone already (the first run got that far)
            log.info("reconcile: %s", exc)
