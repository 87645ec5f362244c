"""The default IPAM driver: Docker-like pools, O(1) addresses, state in the store.

Registered by the controller under the name ``default``, through the same hook
contract (``request_pool`` ... ``release_address``) a third-party IPAM implements.
A second instance on the cluster store serves global-scope networks: there several
engines allocate at once, and the store's atomic create (``put(create=True)``)
decides every race; the loser moves on to the next pool or address.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable

from netcore.errors import AlreadyExists, Conflict, InvalidConfig, NotFound
from netcore.hookspecs import hookimpl
from netcore.ipam.allocator import RangeAllocator
from netcore.ipam.pools import default_pools, first_free_pool, overlapping
from netcore.models import Pool
from netcore.store import Store

__all__ = ["DefaultIpam", "GATEWAY_REQUEST", "parse_ipv4_network"]

GATEWAY_REQUEST = {"RequestAddressType": "com.docker.network.gateway"}
_POOL, _ADDR = "pool", "address"


def parse_ipv4_network(value: str, what: str = "subnet") -> ipaddress.IPv4Network:
    """A CIDR from user input, or ``InvalidConfig`` naming the problem."""
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise InvalidConfig(f"invalid {what} {value!r}: {exc}") from None
    if net.version != 4:
        raise InvalidConfig(f"invalid {what} {value!r}: only IPv4 is supported")
    if net.prefixlen > 30:
        raise InvalidConfig(f"invalid {what} {value!r}: prefix /{net.prefixlen} leaves no room for hosts")
    return net  # type: ignore[return-value]


class DefaultIpam:
    """Pools are ``pool`` records, each reserved address an ``address`` record under its pool."""

    def __init__(
        self,
        store: Store,
        host_prefixes: Callable[[], Iterable[str]] = lambda: (),
        pools: Callable[[], Iterable[ipaddress.IPv4Network]] = default_pools,
        space: str = "LocalDefault",
        lease: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.store = store
        self.host_prefixes = host_prefixes
        self.pools = pools
        self.space = space  # the address space: prefix of pool ids
        self.lease = lease  # cluster: container addresses live as long as their engine's lease
        self._allocators: dict[str, RangeAllocator] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ pools ----

    @hookimpl
    def request_pool(
        self, network_id: str, subnet: str | None, ip_range: str | None, options: dict[str, str]
    ) -> Pool:
        for _ in range(64):  # another engine may take the pool we picked: pick again
            try:
                return self._request_pool(network_id, subnet, ip_range)
            except AlreadyExists:
                if subnet:
                    raise Conflict(f"subnet {subnet} is already in use") from None
        raise Conflict("could not reserve an address pool: too much contention")

    def _request_pool(self, network_id: str, subnet: str | None, ip_range: str | None) -> Pool:
        pools = self.store.list(_POOL)
        taken = {ipaddress.ip_network(p["subnet"]): p for p in pools}
        if subnet:
            net = parse_ipv4_network(subnet)
            clash = overlapping(net, taken)
            if clash is not None:
                raise Conflict(f"subnet {net} overlaps {clash} of network {taken[clash]['network_id'][:12]}")
        else:
            if ip_range:
                raise InvalidConfig("--ip-range needs --subnet")
            busy = list(taken)
            for prefix in self.host_prefixes():
                busy.append(ipaddress.ip_network(prefix, strict=False))
            net = first_free_pool((n for n in busy if n.version == 4), self.pools())
            if net is None:
                raise Conflict("all predefined address pools have been fully subnetted")
        if ip_range:
            sub = parse_ipv4_network(ip_range, "ip-range")
            if not sub.subnet_of(net):  # type: ignore[arg-type]
                raise InvalidConfig(f"ip-range {sub} is not inside subnet {net}")
        pool_id = f"{self.space}/{net}"
        record = {"pool_id": pool_id, "subnet": str(net), "ip_range": ip_range, "network_id": network_id}
        self.store.put(_POOL, pool_id, record, create=True)
        with self._lock:
            self._allocators.pop(pool_id, None)  # a pool of that id released elsewhere: its old state is void
        return Pool(pool_id=pool_id, subnet=str(net))

    @hookimpl
    def release_pool(self, pool_id: str) -> None:
        with self.store.transaction():
            for addr in self.store.list(_ADDR, parent=pool_id):
                self.store.delete(_ADDR, f"{pool_id}/{addr['address']}")
            self.store.delete(_POOL, pool_id)
        with self._lock:
            self._allocators.pop(pool_id, None)

    # ------------------------------------------------------------ addresses ----

    def _allocator(self, pool_id: str) -> tuple[RangeAllocator, ipaddress.IPv4Network]:
        pool = self.store.get(_POOL, pool_id)
        if pool is None:
            raise NotFound(f"address pool {pool_id} not found")
        net = ipaddress.IPv4Network(pool["subnet"])
        alloc = self._allocators.get(pool_id)
        if alloc is None:
            rng = ipaddress.IPv4Network(pool["ip_range"]) if pool.get("ip_range") else net
            # never hand out the subnet's own network or broadcast address
            first = max(int(rng.network_address), int(net.network_address) + 1)
            last = min(int(rng.broadcast_address), int(net.broadcast_address) - 1)
            taken = {int(ipaddress.IPv4Address(a["address"])) for a in self.store.list(_ADDR, parent=pool_id)}
            alloc = self._allocators[pool_id] = RangeAllocator(first, last, taken)
        return alloc, net

    @hookimpl
    def request_address(self, pool_id: str, address: str | None, options: dict[str, str]) -> str:
        with self._lock:
            alloc, net = self._allocator(pool_id)
            gateway = options.get("RequestAddressType") == GATEWAY_REQUEST["RequestAddressType"]
            if address is None and gateway:
                address = str(net.network_address + 1)
            if address is not None:
                try:
                    ip = ipaddress.IPv4Address(address)
                except ValueError:
                    raise InvalidConfig(f"invalid IP address {address!r}") from None
                if ip not in net or ip in (net.network_address, net.broadcast_address):
                    raise InvalidConfig(f"address {ip} is not a usable address of subnet {net}")
                if not alloc.mark(int(ip)):
                    raise AlreadyExists(f"address {ip} is already in use on {net}")
                self._record(pool_id, ip, alloc, keep_on_clash=False, leased=not gateway)
                return str(ip)
            refreshed = False
            while True:  # the store has the last word: an address another engine took is skipped
                n = alloc.allocate()
                if n is None and not refreshed:  # others may have freed some: ask the store once
                    self._allocators.pop(pool_id, None)
                    alloc, net = self._allocator(pool_id)
                    refreshed = True
                    continue
                if n is None:
                    raise Conflict(f"no available addresses left in {net}")
                ip = ipaddress.IPv4Address(n)
                try:
                    self._record(pool_id, ip, alloc, keep_on_clash=True, leased=True)
                    return str(ip)
                except AlreadyExists:
                    continue

    def _record(self, pool_id: str, ip: ipaddress.IPv4Address, alloc: RangeAllocator, keep_on_clash: bool, leased: bool) -> None:
        """Write the address's row; on a clash it stays marked taken (someone else has it) if asked."""
        lease = self.lease() if leased else None
        extra = {"lease": lease} if lease is not None else {}
        try:
            self.store.put(_ADDR, f"{pool_id}/{ip}", {"address": str(ip)}, parent=pool_id, create=True, **extra)
        except AlreadyExists:
            if not keep_on_clash:
                alloc.release(int(ip))
                raise AlreadyExists(f"address {ip} is already in use") from None
            raise
        except Exception:
            alloc.release(int(ip))
            raise

    def renew(self, pool_id: str, address: str) -> None:
        """Write an address's row again under the current lease (the engine's lease was lost)."""
        lease = self.lease()
        self.store.put(_ADDR, f"{pool_id}/{address}", {"address": address}, parent=pool_id, **({"lease": lease} if lease is not None else {}))

    @hookimpl
    def release_address(self, pool_id: str, address: str) -> None:
        with self._lock:
            self.store.delete(_ADDR, f"{pool_id}/{address}")
            alloc = self._allocators.get(pool_id)
            if alloc is not None:
                alloc.release(int(ipaddress.IPv4Address(address)))
