"""Default pools and the choice of a free one (netcore/ipam/pools.py)."""

from __future__ import annotations

import ipaddress

from netcore.ipam.pools import default_pools, first_free_pool, overlapping

N = ipaddress.IPv4Network


def test_default_pools_are_dockers_in_order():
    pools = list(default_pools())
    assert pools[:15] == [N(f"172.{i}.0.0/16") for i in range(17, 32)]
    assert pools[15] == N("192.168.0.0/20")
    assert pools[16] == N("192.168.16.0/20")
    assert pools[-1] == N("192.168.240.0/20")
    assert len(pools) == 15 + 16
    assert len(set(pools)) == len(pools)


def test_overlapping_names_the_clashing_network():
    taken = [N("10.0.0.0/8"), N("172.17.3.0/24")]
    assert overlapping(N("172.17.0.0/16"), taken) == N("172.17.3.0/24")
    assert overlapping(N("10.200.0.0/16"), taken) == N("10.0.0.0/8")
    assert overlapping(N("172.18.0.0/16"), taken) is None


def test_first_free_pool_skips_overlaps_both_ways():
    # a smaller network inside a default pool, and a larger one covering several
    taken = [N("172.17.9.0/24"), N("172.18.0.0/15")]  # 172.18/15 covers 172.18 and 172.19
    assert first_free_pool(taken) == N("172.20.0.0/16")


def test_first_free_pool_falls_through_to_192_168():
    assert first_free_pool([N("172.16.0.0/12")]) == N("192.168.0.0/20")
    assert first_free_pool([N("172.16.0.0/12"), N("192.168.0.0/19")]) == N("192.168.32.0/20")


def test_first_free_pool_none_when_everything_taken():
    assert first_free_pool([N("172.16.0.0/12"), N("192.168.0.0/16")]) is None


def test_first_free_pool_with_explicit_candidates():
    cands = [N("10.1.0.0/24"), N("10.2.0.0/24")]
    assert first_free_pool([N("10.1.0.0/16")], cands) == N("10.2.0.0/24")
