"""``/IpamDriver.*`` served to dockerd as ``netcore-ipam``: netcore's IPAM for Docker networks.

Docker asks for the pool (and the gateway) before it creates the network, and gives
the driver only the pool, not its id. So a pool first lives in netcore's default IPAM
under a pending owner; when ``CreateNetwork`` for it reaches a ``netcore-*`` driver,
the network takes it over (``NetworkDriverApi._take_pending``) and from then on
addresses come from the network's own IPAM (the default one, or the driver's: routed
hands out per-host blocks). Pool ids are netcore's (``LocalDefault/<cidr>``), the
same before and after, and records survive restarts (no replay needed).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from netcore import Conflict, InvalidConfig, NotFound, names
from netcore.controller import Controller
from netcore.ipam import GATEWAY_REQUEST

from runtime.dockerplugin import state
from runtime.dockerplugin.network import reap_stale
from runtime.dockerplugin.transport import Methods

__all__ = ["IpamApi"]

NAME_OPTION = "netcore.network"  # --ipam-opt netcore.network=NAME: the pool of that network (other hosts: the same one)


class IpamApi:
    def __init__(self, ctl: Controller, ready: threading.Event, deferred: Any) -> None:
        self.ctl, self.ready, self.deferred = ctl, ready, deferred

    def methods(self) -> Methods:
        m = {
            "GetCapabilities": lambda a: {"RequiresMACAddress": False, "RequiresRequestReplay": False},
            "GetDefaultAddressSpaces": lambda a: {"LocalDefaultAddressSpace": state.LOCAL_SPACE, "GlobalDefaultAddressSpace": state.GLOBAL_SPACE},
            "RequestPool": self._guard(self.request_pool),
            "ReleasePool": self._guard(self.release_pool),
            "RequestAddress": self._guard(self.request_address),
            "ReleaseAddress": self._guard(self.release_address),
        }
        return {"IpamDriver." + k: v for k, v in m.items()}

    def _guard(self, fn: Any) -> Any:
        def call(args: dict[str, Any]) -> dict[str, Any]:
            if not self.ready.wait(60):
                raise NotFound("netcore engine is still starting")
            with self.ctl.lock:
                return fn(args)
        return call

    def request_pool(self, a: dict[str, Any]) -> dict[str, Any]:
        if a.get("V6"):
            raise InvalidConfig("netcore-ipam hands out IPv4 pools only")
        pool, sub = a.get("Pool") or None, a.get("SubPool") or None
        if sub and not pool:
            raise InvalidConfig("a sub-pool (--ip-range) needs a pool (--subnet)")
        name = str((a.get("Options") or {}).get(NAME_OPTION) or "")
        if name:
            if not names.valid_object_name(name):
                raise InvalidConfig(f"invalid {NAME_OPTION} {name!r}")
            net = state.network_named(self.ctl, name)
            if net is not None and net.pool_id and net.subnet:  # a network of the cluster: its pool, once more
                if pool and pool != net.subnet:
                    raise Conflict(f"network {name} has subnet {net.subnet}, not {pool}")
                return {"PoolID": net.pool_id, "Pool": net.subnet, "Data": {}}
        owner = f"{state.PENDING}:{name}" if name else state.PENDING
        got = self.ctl.hooks.ipam("default").request_pool(network_id=owner, subnet=pool, ip_range=sub, options={})
        return {"PoolID": got.pool_id, "Pool": got.subnet, "Data": {}}

    def release_pool(self, a: dict[str, Any]) -> dict[str, Any]:
        pool_id = str(a.get("PoolID") or "")
        rec = self.ctl.store.get("pool", pool_id)
        if rec is not None and str(rec.get("network_id", "")).partition(":")[0] == state.PENDING:  # a network owns the others
            self.ctl.hooks.ipam("default").release_pool(pool_id=pool_id)
        return {}

    def request_address(self, a: dict[str, Any]) -> dict[str, Any]:
        pool_id = str(a.get("PoolID") or "")
        address = a.get("Address") or None
        opts = a.get("Options") or {}
        gateway = opts.get("RequestAddressType") == GATEWAY_REQUEST["RequestAddressType"]
        net = state.network_of_pool(self.ctl, pool_id)
        if net is None:
            rec = self.ctl.store.get("pool", pool_id)
            if rec is None:
                raise NotFound(f"address pool {pool_id} not found")
            subnet = ipaddress.IPv4Network(rec["subnet"])
            if not gateway:
                raise InvalidConfig("netcore-ipam reserves addresses once the network exists: --aux-address is not supported")
            ip = ipaddress.IPv4Address(address) if address else subnet.network_address + 1
            if ip not in subnet:
                raise InvalidConfig(f"gateway {ip} is not in subnet {subnet}")
            return {"Address": f"{ip}/{subnet.prefixlen}", "Data": {}}  # the network reserves it at CreateNetwork
        if gateway and net.gateway:
            return {"Address": f"{net.gateway}/{net.prefixlen}", "Data": {}}
        ip = state.ipam_of(self.ctl, net).request_address(pool_id=net.pool_id, address=address, options={})
        return {"Address": f"{ip}/{net.prefixlen}", "Data": {}}

    def release_address(self, a: dict[str, Any]) -> dict[str, Any]:
        pool_id, address = str(a.get("PoolID") or ""), str(a.get("Address") or "").split("/")[0]
        net = state.network_of_pool(self.ctl, pool_id)
        if net is None or not address or address == net.gateway:  # the network releases its own gateway
            return {}
        state.ipam_of(self.ctl, net).release_address(pool_id=net.pool_id, address=address)
        reap_stale(self.ctl, net, address)  # normally DeleteEndpoint came first and there is none
        return {}
