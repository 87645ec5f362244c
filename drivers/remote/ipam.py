"""A Docker remote IPAM driver, seen by netcore as an IPAM driver like any other
(libnetwork ``ipams/remote``): pools and addresses are the plugin's; netcore keeps ids."""

from __future__ import annotations

import ipaddress
from typing import Any

from netcore import Pool, PluginError, hookimpl

from drivers.remote.client import PluginClient
from drivers.remote.driver import _field

__all__ = ["RemoteIpam"]

GATEWAY_KEY = "com.docker.network.gateway"


class RemoteIpam:
    """IPAM hooks over one plugin's socket."""

    def __init__(self, client: PluginClient, address_space: str) -> None:
        self.client = client
        self.name = client.name
        self.address_space = address_space

    def _ipam_call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.client.call("IpamDriver." + method, args)

    @hookimpl
    def request_pool(self, network_id: str, subnet: str | None, ip_range: str | None, options: dict[str, str]) -> Pool:
        reply = self._ipam_call("RequestPool", {"AddressSpace": self.address_space, "Pool": subnet or "", "SubPool": ip_range or "",
                                           "Options": dict(options), "V6": False})
        where = f"plugin {self.name}: IpamDriver.RequestPool"
        pool_id, pool = _field(reply, "PoolID"), _field(reply, "Pool")
        try:
            net = ipaddress.IPv4Network(pool)
        except (ValueError, TypeError):
            self._release_quietly(pool_id)
            raise PluginError(f"{where}: invalid pool {pool!r}") from None
        if not pool_id or not isinstance(pool_id, str):
            raise PluginError(f"{where}: the answer has no PoolID")
        gateway = None
        data = _field(reply, "Data") or {}
        if isinstance(data, dict) and data.get(GATEWAY_KEY):
            try:
                gw = ipaddress.IPv4Interface(data[GATEWAY_KEY])
            except ValueError:
                self._release_quietly(pool_id)
                raise PluginError(f"{where}: invalid gateway {data[GATEWAY_KEY]!r}") from None
            gateway = str(gw.ip) if gw.ip in net else None
        return Pool(pool_id=pool_id, subnet=str(net), gateway=gateway)

    def _release_quietly(self, pool_id: Any) -> None:
        if isinstance(pool_id, str) and pool_id:
            try:
                self.client.call("IpamDriver.ReleasePool", {"PoolID": pool_id}, timeout=1.0)
            except PluginError:
                pass

    @hookimpl
    def release_pool(self, pool_id: str) -> None:
        self._ipam_call("ReleasePool", {"PoolID": pool_id})

    @hookimpl
    def request_address(self, pool_id: str, address: str | None, options: dict[str, str]) -> str:
        reply = self._ipam_call("RequestAddress", {"PoolID": pool_id, "Address": address or "", "Options": dict(options)})
        got = _field(reply, "Address")
        if not got:
            raise PluginError(f"plugin {self.name}: IpamDriver.RequestAddress: no address returned")
        try:
            ip = ipaddress.IPv4Interface(got).ip if "/" in got else ipaddress.IPv4Address(got)
        except ValueError:
            raise PluginError(f"plugin {self.name}: IpamDriver.RequestAddress: invalid address {got!r}") from None
        return str(ip)

    @hookimpl
    def release_address(self, pool_id: str, address: str) -> None:
        self._ipam_call("ReleaseAddress", {"PoolID": pool_id, "Address": address})
