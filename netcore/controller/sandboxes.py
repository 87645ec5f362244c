"""Sandboxes: a container's network stack, its attachments, and the gateway network it may need.

Container start (``setup``) follows netavark's two phases: resolve and validate
every network first, then connect each attachment in order (``Endpoints.connect``),
all or nothing. Teardown leaves every endpoint, then deletes the netns.
"""

from __future__ import annotations

from collections.abc import Iterable

from netcore import names
from netcore.controller.core import NETWORK, SANDBOX, Core, log
from netcore.controller.endpoints import Endpoints
from netcore.controller.networks import Networks
from netcore.errors import AlreadyExists, Forbidden, InvalidConfig, NetcoreError, NotFound, TeardownIncomplete
from netcore.models import GLOBAL, Attachment, Endpoint, Network, PortBinding, Sandbox
from netcore.steps import pause_point
from netcore.controller.deps import Deferrer

__all__ = ["Sandboxes"]

GWBRIDGE = names.GATEWAY_NETWORK


class Sandboxes:
    """The sandbox operations of one controller. Callers hold ``core.lock`` and a kernel session."""

    def __init__(self, core: Core, networks: Networks, endpoints: Endpoints) -> None:
        self.core = core
        self.networks = networks
        self.endpoints = endpoints

    def setup(
        self,
        sandbox_id: str,
        name: str,
        attachments: list[Attachment],
        hostname: str = "",
        dns_servers: Iterable[str] = (),
        ports: Iterable[PortBinding] = (),
        netns_path: str | None = None,
    ) -> Sandbox:
        core = self.core
        nets = [core.network(a.network) for a in attachments]
        host_ns = [n for n in nets if core.driver_info(n.driver).host_namespace]
        if host_ns and len(nets) > 1:
            raise InvalidConfig(f"conflicting options: {host_ns[0].name} type networking can't be used with other networks")
        if len({n.id for n in nets}) != len(nets):
            raise InvalidConfig("a container cannot be connected to the same network twice")
        for net, att in zip(nets, attachments):
            self.endpoints.check_attachment(net, att)
        path = None
        pause_point("sandbox.netns")
        if not host_ns:
            path = netns_path or core.kernel.create_netns(f"nc-{core.tag}-{sandbox_id[:12]}")
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
            core.store.put(SANDBOX, sandbox_id, sandbox.to_dict(), create=True)
            for net, att in zip(nets, attachments):
                self.endpoints.connect(net, sandbox, att)
            self.gateway_service(sandbox)
        except BaseException:
            self.teardown(sandbox)
            raise
        return sandbox

    def teardown(self, sandbox: Sandbox, defer: Deferrer | None = None) -> None:
        """Every endpoint leaves (``leave`` with ``teardown=True`` when this deletes the netns:
        the kernel then reaps the interfaces in it), then the netns goes."""
        core = self.core
        errors: list[BaseException] = []
        going = sandbox.netns_path is not None and not sandbox.external and core.kernel.netns_exists(sandbox.netns_path)
        for ep in reversed(core.sandbox_endpoints(sandbox)):
            try:
                self.endpoints.disconnect(core.network(ep.network_id), sandbox, ep, teardown=going, defer=defer)
            except Exception as exc:
                errors.append(exc)
        pause_point("sandbox.netns.delete")
        if sandbox.netns_path and not sandbox.external:
            try:
                core.kernel.delete_netns(sandbox.netns_path)
            except Exception as exc:
                errors.append(exc)
        pause_point("sandbox.forget")
        core.store.delete(SANDBOX, sandbox.id)
        if errors:
            raise TeardownIncomplete(f"tear down sandbox {sandbox.name or sandbox.id[:12]}", errors)

    def _running(self, sandbox_id: str) -> Sandbox:
        sandbox = self.core.sandbox(sandbox_id)
        if sandbox is None:
            raise NotFound(f"sandbox {sandbox_id[:12]} not found")
        return sandbox

    def connect(
        self, network_ref: str, sandbox_id: str, ip: str | None, aliases: Iterable[str], gw_priority: int, ifname: str = ""
    ) -> Endpoint:
        core = self.core
        sandbox = self._running(sandbox_id)
        net = core.network(network_ref)
        if sandbox.netns_path is None:
            raise Forbidden("container sharing network namespace with host network cannot be connected to any other network")
        if core.driver_info(net.driver).host_namespace:
            raise Forbidden(f"container cannot be disconnected from its namespace to join {net.name}")
        if any(e.network_id == net.id for e in core.sandbox_endpoints(sandbox)):
            raise AlreadyExists(f"endpoint with name {sandbox.name} already exists in network {net.name}")
        att = Attachment(network=net.id, ip=ip, aliases=tuple(aliases), gw_priority=gw_priority, ifname=ifname)
        self.endpoints.check_attachment(net, att)
        ep = self.endpoints.connect(net, sandbox, att)
        try:
            self.gateway_service(sandbox)
        except BaseException:
            self.endpoints.disconnect(net, sandbox, ep)
            raise
        return ep

    def disconnect(self, network_ref: str, sandbox_id: str, defer: Deferrer | None = None) -> Endpoint:
        core = self.core
        sandbox = self._running(sandbox_id)
        net = core.network(network_ref)
        ep = next((e for e in core.sandbox_endpoints(sandbox) if e.network_id == net.id), None)
        if ep is None:
            raise NotFound(f"container {sandbox.name} is not connected to network {net.name}")
        self.endpoints.disconnect(net, sandbox, ep, defer=defer)
        try:
            self.gateway_service(sandbox)
        except NetcoreError as exc:
            log.warning("%s: gateway network: %s", sandbox.name, exc)
        return ep

    def gateway_service(self, sandbox: Sandbox) -> None:
        """Attach the sandbox to the gateway network while it needs one, detach it after.

        A sandbox needs it when one of its networks spans hosts (overlay) and is not
        internal, and no other network gives it a default route: like Docker's
        docker_gwbridge, a local network for egress and published ports, made by the
        driver that declares ``DriverInfo.gateway_bridge``.
        """
        if sandbox.netns_path is None:
            return
        core = self.core
        eps = core.sandbox_endpoints(sandbox)
        gw = core.store.find(NETWORK, GWBRIDGE)
        gw_id = gw["id"] if gw else None
        others = [(e, core.network(e.network_id)) for e in eps if e.network_id != gw_id]
        need = any(core.driver_info(n.driver).connectivity_scope == GLOBAL and not n.internal for _, n in others) and not any(
            e.gateway for e, _ in others
        )
        current = next((e for e in eps if e.network_id == gw_id), None)
        if need and current is None:
            net = Network.from_dict(gw) if gw else self._create_gateway_network()
            self.endpoints.connect(net, sandbox, Attachment(network=net.id))
        elif current is not None and not need:
            self.endpoints.disconnect(core.network(current.network_id), sandbox, current)

    def _create_gateway_network(self) -> Network:
        """The gateway network, made by the first driver (by name) that offers it."""
        for name in self.core.hooks.drivers():
            info = self.core.driver_info(name)
            if info.gateway_bridge:
                return self.networks.create(GWBRIDGE, name, options=dict(info.gateway_options))
        raise InvalidConfig(
            f"a container on a multi-host network needs the gateway network {GWBRIDGE} for egress, "
            "and no loaded driver provides one (DriverInfo.gateway_bridge)"
        )
