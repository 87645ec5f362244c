"""Block IPAM with host affinity (drivers/routed/blocks.py) over a real SQLite store.

Two BlockIpam objects with different ``me`` on one store stand for two hosts sharing
a cluster store: claims are decided by the store's atomic create.
"""

from __future__ import annotations

import ipaddress
import threading

import pytest

from drivers.routed.blocks import ADDRESS, BLOCK, BlockIpam, block_of, blocks_of
from netcore import AlreadyExists, Conflict, InvalidConfig

NID = "n1"
POOL = "10.9.0.0/24"


@pytest.fixture
def h1(store):
    return BlockIpam(store, "192.0.2.1")


@pytest.fixture
def h2(store):
    return BlockIpam(store, "192.0.2.2")


def alloc(ipam, size=28, address=None):
    return ipam.allocate(NID, POOL, size, "store", address)


def test_blocks_of_a_pool():
    assert list(blocks_of("10.9.0.0/24", 26)) == ["10.9.0.0/26", "10.9.0.64/26", "10.9.0.128/26", "10.9.0.192/26"]
    assert block_of("10.9.0.77", 26) == "10.9.0.64/26"


def test_first_address_claims_a_block_with_affinity(h1, store):
    ip, claimed = alloc(h1)
    assert ip == "10.9.0.1"  # the pool's network address is never handed out
    assert claimed is not None and claimed.block == "10.9.0.0/28" and claimed.host == "192.0.2.1"
    rec = store.get(BLOCK, f"{NID}/10.9.0.0/28")
    assert rec == {"network_id": NID, "subnet": POOL, "block": "10.9.0.0/28", "host": "192.0.2.1", "routing": "store"}
    ip2, claimed2 = alloc(h1)
    assert ip2 == "10.9.0.2" and claimed2 is None  # from the block it has


def test_a_full_block_spills_into_a_second_one_and_empty_blocks_go_back(h1, store):
    ips = [alloc(h1, size=30)[0] for _ in range(3)]  # .1 .2 .3: the first /30 (without .0) is full
    assert ips == ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
    ip, claimed = alloc(h1, size=30)
    assert ip == "10.9.0.4" and claimed.block == "10.9.0.4/30"
    assert [b.block for b in h1.mine(NID)] == ["10.9.0.0/30", "10.9.0.4/30"]
    assert h1.release(NID, "10.9.0.2", 30) is None  # its block still holds .1 and .3
    gone = h1.release(NID, "10.9.0.4", 30)
    assert gone is not None and gone.block == "10.9.0.4/30"  # the last address: the block is given back
    assert [b.block for b in h1.blocks(NID)] == ["10.9.0.0/30"]
    assert alloc(h1, size=30)[0] == "10.9.0.2"  # a freed address of an own block comes first


def test_hosts_get_blocks_of_their_own(h1, h2):
    a, _ = alloc(h1)
    b, blk = alloc(h2)
    assert blk.block == "10.9.0.16/28" and b == "10.9.0.16"
    assert block_of(a, 28) != block_of(b, 28)
    assert {(x.block, x.host) for x in h1.blocks(NID)} == {("10.9.0.0/28", "192.0.2.1"), ("10.9.0.16/28", "192.0.2.2")}


def test_an_address_in_another_hosts_block_is_refused(h1, h2):
    alloc(h1)
    with pytest.raises(Conflict, match="belongs to 192.0.2.1"):
        alloc(h2, address="10.9.0.5")
    ip, blk = alloc(h2, address="10.9.0.200")  # a free block: claimed for it
    assert ip == "10.9.0.200" and blk.block == "10.9.0.192/28" and blk.host == "192.0.2.2"
    with pytest.raises(AlreadyExists):
        alloc(h2, address="10.9.0.200")
    with pytest.raises(InvalidConfig, match="not a usable address"):
        alloc(h2, address="10.9.1.1")
    with pytest.raises(InvalidConfig, match="invalid IP address"):
        alloc(h2, address="banana")


def test_a_pool_without_free_blocks_is_a_conflict(h1, h2):
    for _ in range(4):  # /24 in /26: four blocks, all h1's
        h1.claim(NID, POOL, 26, "store")
    with pytest.raises(Conflict, match="no free address block"):
        h2.allocate(NID, POOL, 26, "store")


def test_concurrent_hosts_never_share_a_block(store):
    hosts = [BlockIpam(store, f"192.0.2.{i}") for i in range(1, 9)]
    got: dict[str, list[str]] = {}

    def run(ipam):
        got[ipam.me] = [ipam.allocate(NID, POOL, 28, "store")[0] for _ in range(3)]

    threads = [threading.Thread(target=run, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    owners = {}
    for me, ips in got.items():
        for ip in ips:
            owners.setdefault(block_of(ip, 28), set()).add(me)
    assert all(len(v) == 1 for v in owners.values()), owners
    assert len({ip for ips in got.values() for ip in ips}) == 24


def test_releasing_a_network_drops_every_block_and_address(h1, h2, store):
    alloc(h1), alloc(h2)
    gone = h1.release_network(NID)
    assert {b.block for b in gone} == {"10.9.0.0/28", "10.9.0.16/28"}
    assert store.list(BLOCK) == [] and store.list(ADDRESS) == []


def test_addresses_of_a_slash_32_block(h1):
    ip, blk = h1.allocate(NID, POOL, 32, "store")
    assert ip == "10.9.0.1" and blk.block == "10.9.0.1/32"  # the block of .0 was skipped
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(blk.block)
