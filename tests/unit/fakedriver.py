"""A driver for unit tests of the controller: it makes its links in a ``FakeKernel``.

Like the bridge driver it makes a host-side link per endpoint that the core moves
into the sandbox, answers ``join`` with the network's gateway, and publishes ports
through the engine's firewall (a ``NoFirewall`` here). Every hook call goes to
``log`` (shared with the test's other observers). ``fail`` names hooks (``join``, or
``join NETWORK`` for one network) that raise a ``KernelError`` once each, as a
refusing kernel would; ``lose_links`` makes ``join`` answer with a link that is gone.
"""

from __future__ import annotations

from typing import Any

from netcore import names
from netcore.errors import KernelError
from netcore.hookspecs import hookimpl
from netcore.models import DriverInfo, Endpoint, EngineContext, InterfaceInfo, JoinInfo, Network, Sandbox
from netcore.osl.fake import FakeKernel


class FakeDriver:
    def __init__(self, kernel: FakeKernel, log: list[tuple[str, ...]], scope: str = "local") -> None:
        self.kernel = kernel
        self.log = log
        self.scope = scope  # "global": a multi-host driver, as overlay
        self.fail: set[str] = set()
        self.lose_links = False
        self.firewall: Any = None
        self.tag = ""

    def _call(self, hook: str, *args: str) -> None:
        self.log.append((hook, *args))
        hit = next((k for k in (hook, f"{hook} {args[0]}" if args else hook) if k in self.fail), None)
        if hit is not None:
            self.fail.discard(hit)
            raise KernelError(hook, args[-1] if args else "", "refused by the test")

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.firewall, self.tag = context.firewall, context.tag

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="fake", data_scope=self.scope, connectivity_scope=self.scope)

    @hookimpl
    def create_network(self, network: Network) -> None:
        self._call("create_network", network.name)

    @hookimpl
    def restore_network(self, network: Network, endpoints: list[Endpoint]) -> None:
        self._call("restore_network", network.name)

    @hookimpl
    def delete_network(self, network: Network) -> None:
        self._call("delete_network", network.name)

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        self._call("create_endpoint", network.name, endpoint.name)
        self.kernel.add_link(self.host_ifname(endpoint), alias=names.link_alias(self.tag, endpoint.id))
        return None

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._call("delete_endpoint", network.name, endpoint.name)
        self.kernel.delete_link(self.host_ifname(endpoint))

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        self._call("join", network.name, endpoint.name)
        if self.lose_links:
            self.kernel.delete_link(self.host_ifname(endpoint))
        return JoinInfo(src_ifname=self.host_ifname(endpoint), gateway=None if network.internal else network.gateway)

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        self._call("leave", network.name, endpoint.name)

    @hookimpl
    def program_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self._call("program_external_connectivity", network.name, endpoint.name)
        self.firewall.publish(str(endpoint.ip), endpoint.ports)

    @hookimpl
    def revoke_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self._call("revoke_external_connectivity", network.name, endpoint.name)
        self.firewall.unpublish(endpoint.ports)

    @hookimpl
    def peer_add(self, network: Network, endpoint: Endpoint) -> None:
        self._call("peer_add", network.name, endpoint.name)

    @hookimpl
    def peer_delete(self, network: Network, endpoint: Endpoint) -> None:
        self._call("peer_delete", network.name, endpoint.name)

    @staticmethod
    def host_ifname(endpoint: Endpoint) -> str:
        return f"fk{endpoint.id[:10]}"
