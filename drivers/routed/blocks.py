"""Per-host address blocks (Calico's block IPAM with affinity), over any netcore Store.

A routed network's pool is cut into blocks of ``block_size``. A host claims a block
with one atomic create (``put(create=True)``: SQLite on one host, etcd across hosts),
recording its affinity (the host's advertised address, or ``local``); it hands out
addresses only from its own blocks, claims the next free block when they are full,
and gives a block back as soon as its last address is released. Records:

    routed-block/<network id>/<block>      {network_id, subnet, block, host, routing}  parent: network id
    routed-address/<network id>/<ip>       {address, block}                            parent: block record id

Every address of a block is usable (each container has a /32) except the pool's own
network and broadcast addresses. An address in another host's block is refused
(strict affinity: no borrowing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from netcore import AlreadyExists, Conflict, InvalidConfig

__all__ = ["BLOCK", "ADDRESS", "Block", "BlockIpam", "block_of", "blocks_of"]

BLOCK, ADDRESS = "routed-block", "routed-address"


@dataclass(frozen=True)
class Block:
    network_id: str
    subnet: str  # the pool
    block: str  # CIDR
    host: str  # affinity
    routing: str

    @property
    def id(self) -> str:
        return f"{self.network_id}/{self.block}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Block:
        return cls(d["network_id"], d["subnet"], d["block"], d["host"], d.get("routing", "store"))

    def to_dict(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "subnet": self.subnet, "block": self.block, "host": self.host, "routing": self.routing}


def block_of(ip: str, block_size: int) -> str:
    return str(ipaddress.IPv4Network(f"{ip}/{block_size}", strict=False))


def blocks_of(subnet: str, block_size: int) -> Iterator[str]:
    return (str(b) for b in ipaddress.IPv4Network(subnet).subnets(new_prefix=block_size))


def _usable(block: str, subnet: str) -> Iterator[str]:
    pool = ipaddress.IPv4Network(subnet)
    for ip in ipaddress.IPv4Network(block):
        if ip not in (pool.network_address, pool.broadcast_address) or pool.prefixlen == 32:
            yield str(ip)


class BlockIpam:
    """Blocks and addresses of routed networks in ``store``, claimed for host ``me``.

    Callers serialise calls on one host (the driver holds a lock); hosts race only on
    block claims, which the store's atomic create decides.
    """

    def __init__(self, store: Any, me: str) -> None:
        self.store = store
        self.me = me

    def _create(self, kind: str, id: str, data: dict[str, Any], parent: str) -> bool:
        try:
            self.store.put(kind, id, data, parent=parent, create=True)
        except AlreadyExists:
            return False
        return True

    # ------------------------------------------------------------ queries ----

    def blocks(self, network_id: str) -> list[Block]:
        return sorted((Block.from_dict(d) for d in self.store.list(BLOCK, parent=network_id)), key=lambda b: ipaddress.IPv4Network(b.block))

    def mine(self, network_id: str) -> list[Block]:
        return [b for b in self.blocks(network_id) if b.host == self.me]

    def used(self, block: Block) -> set[str]:
        return {d["address"] for d in self.store.list(ADDRESS, parent=block.id)}

    # ------------------------------------------------------------ changes ----

    def claim(self, network_id: str, subnet: str, block_size: int, routing: str, wanted: str | None = None, skip: set[str] = frozenset()) -> Block | None:  # type: ignore[assignment]
        """Claim ``wanted`` (if free) or the first free block of the pool not in ``skip``; None when none is left."""
        taken = {b.block for b in self.blocks(network_id)} | set(skip)
        for cidr in [wanted] if wanted else blocks_of(subnet, block_size):
            if cidr in taken:
                continue
            blk = Block(network_id, subnet, cidr, self.me, routing)
            if self._create(BLOCK, blk.id, blk.to_dict(), parent=network_id):
                return blk
        return None

    def allocate(self, network_id: str, subnet: str, block_size: int, routing: str, address: str | None = None) -> tuple[str, Block | None]:
        """An address (``address`` if given) from this host's blocks; returns it and the block
        claimed for it now (None if an existing one served)."""
        if address is not None:
            return self._allocate_static(network_id, subnet, block_size, routing, address)
        for blk in self.mine(network_id):
            ip = self._take_free(blk)
            if ip:
                return ip, None
        useless: set[str] = set()
        while True:
            blk = self.claim(network_id, subnet, block_size, routing, skip=useless)
            if blk is None:
                raise Conflict(f"no free address block of /{block_size} left in {subnet} (the other blocks belong to other hosts)")
            ip = self._take_free(blk)
            if ip:
                return ip, blk
            self.release_block(blk)  # e.g. a /32 block holding the pool's network address
            useless.add(blk.block)

    def _take_free(self, blk: Block) -> str | None:
        used = self.used(blk)
        for ip in _usable(blk.block, blk.subnet):
            if ip not in used and self._create(ADDRESS, f"{blk.network_id}/{ip}", {"address": ip, "block": blk.block}, parent=blk.id):
                return ip
        return None

    def _allocate_static(self, network_id: str, subnet: str, block_size: int, routing: str, address: str) -> tuple[str, Block | None]:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            raise InvalidConfig(f"invalid IP address {address!r}") from None
        pool = ipaddress.IPv4Network(subnet)
        if ip not in pool or (pool.prefixlen < 31 and ip in (pool.network_address, pool.broadcast_address)):
            raise InvalidConfig(f"address {ip} is not a usable address of subnet {subnet}")
        cidr = block_of(str(ip), block_size)
        claimed = None
        rec = self.store.get(BLOCK, f"{network_id}/{cidr}")
        if rec is None:
            claimed = self.claim(network_id, subnet, block_size, routing, wanted=cidr)
            rec = claimed.to_dict() if claimed else self.store.get(BLOCK, f"{network_id}/{cidr}")
        if rec is None or rec["host"] != self.me:
            owner = rec["host"] if rec else "another host"
            raise Conflict(f"address {ip} is in block {cidr}, which belongs to {owner}")
        blk = Block.from_dict(rec)
        if not self._create(ADDRESS, f"{network_id}/{ip}", {"address": str(ip), "block": cidr}, parent=blk.id):
            if claimed is not None:
                self.release_block(claimed)
            raise AlreadyExists(f"address {ip} is already in use on {subnet}")
        return str(ip), claimed

    def release(self, network_id: str, address: str, block_size: int) -> Block | None:
        """Give ``address`` back; returns its block if that became empty and was given back too."""
        cidr = block_of(address, block_size)
        self.store.delete(ADDRESS, f"{network_id}/{address}")
        rec = self.store.get(BLOCK, f"{network_id}/{cidr}")
        if rec is None or rec["host"] != self.me:
            return None
        blk = Block.from_dict(rec)
        if self.used(blk):
            return None
        self.release_block(blk)
        return blk

    def release_block(self, blk: Block) -> None:
        self.store.delete(BLOCK, blk.id)

    def release_network(self, network_id: str) -> list[Block]:
        """Every block and address of a network (when its pool goes); returns the blocks."""
        gone = self.blocks(network_id)
        for blk in gone:
            for d in self.store.list(ADDRESS, parent=blk.id):
                self.store.delete(ADDRESS, f"{network_id}/{d['address']}")
            self.store.delete(BLOCK, blk.id)
        return gone
