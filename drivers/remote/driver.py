"""A Docker remote network driver, seen by netcore as a driver like any other.

Each hook is one ``/NetworkDriver.*`` call (libnetwork ``drivers/remote/driver.go``).
The plugin makes the interface in the host namespace and names it (``SrcName``); the
core moves it into the sandbox and addresses it, as libnetwork does.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from netcore import (
    GLOBAL,
    LOCAL,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    JoinInfo,
    Network,
    PluginError,
    Sandbox,
    StaticRoute,
    hookimpl,
)
from netcore.osl import links, netns

from drivers.remote.client import NotImplementedCall, PluginClient

__all__ = ["RemoteDriver", "network_options", "ipv4_data"]

log = logging.getLogger("netcore.remote")
GENERIC = "com.docker.network.generic"
PROTO = {"tcp": 6, "udp": 17, "sctp": 132}


def network_options(network: Network) -> dict[str, Any]:
    """CreateNetwork's ``Options`` as libnetwork builds them: ``-o`` options under ``generic``."""
    opts: dict[str, Any] = {GENERIC: dict(network.options), "com.docker.network.enable_ipv6": False}
    if network.internal:
        opts["com.docker.network.internal"] = True
    return opts


def ipv4_data(network: Network, address_space: str = "LocalDefault") -> list[dict[str, Any]]:
    if not network.subnet:
        return []
    data: dict[str, Any] = {"AddressSpace": address_space, "Pool": network.subnet, "AuxAddresses": {}}
    if network.gateway:
        data["Gateway"] = f"{network.gateway}/{network.prefixlen}"
    return [data]


class RemoteDriver:
    """Network driver hooks over one plugin's socket."""

    def __init__(self, client: PluginClient, capabilities: dict[str, Any]) -> None:
        self.client = client
        self.name = client.name
        self.scope = str(capabilities.get("Scope") or LOCAL).lower()
        self.connectivity = str(capabilities.get("ConnectivityScope") or self.scope).lower()
        if self.scope not in (LOCAL, GLOBAL) or self.connectivity not in (LOCAL, GLOBAL):
            raise PluginError(f"plugin {self.name}: NetworkDriver.GetCapabilities: invalid scope {self.scope!r}")
        self.ctx: EngineContext | None = None

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.ctx = context

    @hookimpl
    def driver_info(self) -> DriverInfo:
        # "global" is Docker's cluster store; without netcore's cluster the plugin
        # coordinates its hosts itself, so its networks stay local records here
        clustered = self.ctx is not None and self.ctx.cluster is not None
        return DriverInfo(name=self.name, data_scope=GLOBAL if self.scope == GLOBAL and clustered else LOCAL,
                          connectivity_scope=self.connectivity)

    def _call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.client.call("NetworkDriver." + method, args)

    @hookimpl
    def create_network(self, network: Network) -> None:
        args = {"NetworkID": network.id, "Options": network_options(network), "IPv4Data": ipv4_data(network), "IPv6Data": []}
        try:
            self._call("CreateNetwork", args)
        except PluginError as exc:
            if "no answer within" in str(exc):  # it may still finish: ask it to forget, briefly
                self._forget("DeleteNetwork", {"NetworkID": network.id})
            raise

    def _forget(self, method: str, args: dict[str, Any]) -> None:
        try:
            self.client.call("NetworkDriver." + method, args, timeout=1.0)
        except PluginError as exc:
            log.debug("%s", exc)

    @hookimpl
    def delete_network(self, network: Network) -> None:
        self._call("DeleteNetwork", {"NetworkID": network.id})

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        iface = {"Address": endpoint.address or "", "AddressIPv6": "", "MacAddress": endpoint.mac or ""}
        args = {"NetworkID": network.id, "EndpointID": endpoint.id, "Interface": iface, "Options": dict(endpoint.options)}
        try:
            reply = self._call("CreateEndpoint", args)
        except PluginError as exc:
            if "no answer within" in str(exc):
                self._forget("DeleteEndpoint", {"NetworkID": network.id, "EndpointID": endpoint.id})
            raise
        got = _field(reply, "Interface") or {}
        if not isinstance(got, dict):
            raise PluginError(f"plugin {self.name}: NetworkDriver.CreateEndpoint: \"Interface\" is not an object")
        mac, addr = _field(got, "MacAddress") or None, _field(got, "Address") or None
        if (mac and endpoint.mac and mac != endpoint.mac) or (addr and endpoint.address and addr != endpoint.address):
            self._forget("DeleteEndpoint", {"NetworkID": network.id, "EndpointID": endpoint.id})
            raise PluginError(f"plugin {self.name}: NetworkDriver.CreateEndpoint: driver modified interface {endpoint.address or endpoint.mac}")
        if addr:
            try:
                ipaddress.IPv4Interface(addr)
            except ValueError:
                raise PluginError(f"plugin {self.name}: NetworkDriver.CreateEndpoint: invalid address {addr!r}") from None
        if mac is None and addr is None:
            return None
        return InterfaceInfo(mac=None if endpoint.mac else mac, address=None if endpoint.address else addr)

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._call("DeleteEndpoint", {"NetworkID": network.id, "EndpointID": endpoint.id})

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        args = {"NetworkID": network.id, "EndpointID": endpoint.id, "SandboxKey": sandbox.netns_path or "", "Options": {}}
        reply = self._call("Join", args)
        try:
            return _join_info(self.name, reply)
        except PluginError:
            self._forget("Leave", {"NetworkID": network.id, "EndpointID": endpoint.id})
            raise

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        try:
            self._call("Leave", {"NetworkID": network.id, "EndpointID": endpoint.id})
        finally:
            if not teardown and sandbox.netns_path and netns.exists(sandbox.netns_path):
                # libnetwork moves the interface back to the host for the plugin to delete;
                # here it is deleted where it is, so nothing stays behind whatever the plugin does
                with netns.netlink(sandbox.netns_path) as ipr:
                    if endpoint.ifname and links.lookup(ipr, endpoint.ifname) is not None:
                        links.delete(ipr, endpoint.ifname)

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
        try:
            reply = self._call("EndpointOperInfo", {"NetworkID": network.id, "EndpointID": endpoint.id})
        except NotImplementedCall:
            return None
        value = _field(reply, "Value")
        return value if isinstance(value, dict) else None

    @hookimpl
    def program_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        portmap = [
            {"Proto": PROTO.get(p.proto, 6), "IP": endpoint.ip or "", "Port": p.container_port, "HostIP": p.host_ip,
             "HostPort": p.host_port, "HostPortEnd": p.host_port}
            for p in endpoint.ports
        ]
        exposed = [{"Proto": PROTO.get(p.proto, 6), "Port": p.container_port} for p in endpoint.ports]
        args = {"NetworkID": network.id, "EndpointID": endpoint.id,
                "Options": {"com.docker.network.portmap": portmap, "com.docker.network.endpoint.exposedports": exposed}}
        try:
            self._call("ProgramExternalConnectivity", args)
        except NotImplementedCall:  # libnetwork's rule: 404 here means "not implemented"
            pass

    @hookimpl
    def revoke_external_connectivity(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        try:
            self._call("RevokeExternalConnectivity", {"NetworkID": network.id, "EndpointID": endpoint.id})
        except NotImplementedCall:
            pass


def _field(data: dict[str, Any], key: str) -> Any:
    if key in data:
        return data[key]
    low = key.lower()
    return next((v for k, v in data.items() if k.lower() == low), None)


def _join_info(name: str, reply: dict[str, Any]) -> JoinInfo:
    where = f"plugin {name}: NetworkDriver.Join"
    iface = _field(reply, "InterfaceName") or {}
    src = _field(iface, "SrcName") if isinstance(iface, dict) else None
    if not src or not isinstance(src, str):
        raise PluginError(f"{where}: the answer names no interface (InterfaceName.SrcName)")
    gateway = _field(reply, "Gateway") or None
    if gateway:
        try:
            gateway = str(ipaddress.IPv4Address(gateway.split("/")[0]))
        except ValueError:
            raise PluginError(f"{where}: invalid gateway {gateway!r}") from None
    routes = []
    for r in _field(reply, "StaticRoutes") or []:
        try:
            dest = str(ipaddress.IPv4Network(_field(r, "Destination"), strict=False))
            hop = _field(r, "NextHop") or None
            connected = int(_field(r, "RouteType") or 0) == 1
            routes.append(StaticRoute(dest, None if connected or not hop else str(ipaddress.IPv4Address(hop))))
        except (ValueError, TypeError, AttributeError):
            raise PluginError(f"{where}: invalid static route {r!r}") from None
    return JoinInfo(src_ifname=src, gateway=gateway, static_routes=tuple(routes),
                    disable_gateway_service=bool(_field(reply, "DisableGatewayService")))
