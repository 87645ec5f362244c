"""The default IPAM driver over a real SQLite store."""

from __future__ import annotations

import ipaddress
import threading

import pytest

from netcore.errors import AlreadyExists, Conflict, InvalidConfig, NotFound
from netcore.ipam import GATEWAY_REQUEST, DefaultIpam
from netcore.store.sqlite import SqliteStore


def pool(ipam: DefaultIpam, subnet=None, ip_range=None, network_id="n" * 64):
    return ipam.request_pool(network_id=network_id, subnet=subnet, ip_range=ip_range, options={})


def addr(ipam: DefaultIpam, pool_id: str, address=None, gateway=False):
    return ipam.request_address(pool_id=pool_id, address=address, options=dict(GATEWAY_REQUEST) if gateway else {})


@pytest.fixture
def ipam(store):
    return DefaultIpam(store)


# ------------------------------------------------------------------ pools ----


def test_automatic_pools_follow_default_order(ipam):
    got = [pool(ipam, network_id=f"net{i}").subnet for i in range(17)]
    assert got == [f"172.{i}.0.0/16" for i in range(17, 32)] + ["192.168.0.0/20", "192.168.16.0/20"]


def test_automatic_pool_skips_existing_user_pool(ipam):
    pool(ipam, subnet="172.17.5.0/24")
    assert pool(ipam).subnet == "172.18.0.0/16"


def test_automatic_pool_skips_host_prefixes(store):
    seen = []

    def host_prefixes():
        seen.append(True)
        # host addresses with host bits set, an IPv6 prefix, and a route
        return ["172.17.0.5/16", "fe80::1/64", "172.18.3.0/24"]

    ipam = DefaultIpam(store, host_prefixes=host_prefixes)
    assert pool(ipam).subnet == "172.19.0.0/16"
    assert seen, "host_prefixes was never consulted"


def test_automatic_pool_exhaustion_is_conflict(store):
    ipam = DefaultIpam(store, host_prefixes=lambda: ["172.16.0.0/12", "192.168.0.0/16"])
    with pytest.raises(Conflict):
        pool(ipam)
    assert store.count("pool") == 0


def test_user_subnet_overlapping_pool_is_conflict(ipam, store):
    first = pool(ipam, subnet="10.1.0.0/16")
    for clash in ("10.1.0.0/16", "10.1.2.0/24", "10.0.0.0/8"):
        with pytest.raises(Conflict, match="10.1.0.0/16"):
            pool(ipam, subnet=clash, network_id="other")
    assert [p["pool_id"] for p in store.list("pool")] == [first.pool_id]
    assert pool(ipam, subnet="10.2.0.0/16").subnet == "10.2.0.0/16"  # adjacent is fine


@pytest.mark.parametrize(
    "bad", ["banana", "10.0.0.0/33", "10.0.0.1/24", "fd00::/64", "10.0.0.0/31", "10.0.0.0/32", "300.0.0.0/8"]
)
def test_invalid_subnet_is_invalid_config(ipam, store, bad):
    with pytest.raises(InvalidConfig):
        pool(ipam, subnet=bad)
    assert store.count("pool") == 0


def test_ip_range_outside_subnet_refused(ipam, store):
    with pytest.raises(InvalidConfig, match="not inside"):
        pool(ipam, subnet="10.1.0.0/24", ip_range="10.2.0.0/25")
    with pytest.raises(InvalidConfig, match="not inside"):
        pool(ipam, subnet="10.1.0.0/24", ip_range="10.1.0.0/23")  # bigger than the subnet
    assert store.count("pool") == 0


def test_ip_range_without_subnet_refused(ipam, store):
    with pytest.raises(InvalidConfig):
        pool(ipam, ip_range="172.17.0.0/24")
    assert store.count("pool") == 0


def test_invalid_ip_range_refused(ipam):
    with pytest.raises(InvalidConfig, match="ip-range"):
        pool(ipam, subnet="10.1.0.0/24", ip_range="10.1.0.1/25")


def test_release_pool_frees_subnet_and_addresses(ipam, store):
    p = pool(ipam, subnet="10.1.0.0/24")
    addr(ipam, p.pool_id, gateway=True)
    addr(ipam, p.pool_id)
    ipam.release_pool(pool_id=p.pool_id)
    assert store.count("pool") == 0
    assert store.count("address") == 0
    p2 = pool(ipam, subnet="10.1.0.0/24")
    assert addr(ipam, p2.pool_id, gateway=True) == "10.1.0.1"  # nothing left over


def test_release_unknown_pool_and_address_is_success(ipam):
    ipam.release_pool(pool_id="LocalDefault/10.9.0.0/24")
    p = pool(ipam, subnet="10.1.0.0/24")
    ipam.release_address(pool_id=p.pool_id, address="10.1.0.77")
    assert addr(ipam, p.pool_id, "10.1.0.77") == "10.1.0.77"


# ------------------------------------------------------------------ addresses ----


def test_gateway_request_gives_first_address_then_dynamic_skips_it(ipam):
    p = pool(ipam, subnet="10.1.0.0/24")
    assert addr(ipam, p.pool_id, gateway=True) == "10.1.0.1"
    assert addr(ipam, p.pool_id) == "10.1.0.2"


def test_gateway_request_with_explicit_address(ipam):
    p = pool(ipam, subnet="10.1.0.0/24")
    assert addr(ipam, p.pool_id, "10.1.0.254", gateway=True) == "10.1.0.254"
    with pytest.raises(AlreadyExists):
        addr(ipam, p.pool_id, "10.1.0.254")


def test_specific_address_in_use_is_already_exists(ipam, store):
    p = pool(ipam, subnet="10.1.0.0/24")
    assert addr(ipam, p.pool_id, "10.1.0.7") == "10.1.0.7"
    with pytest.raises(AlreadyExists, match="10.1.0.7"):
        addr(ipam, p.pool_id, "10.1.0.7")
    assert store.count("address", parent=p.pool_id) == 1


@pytest.mark.parametrize("bad", ["10.2.0.5", "10.1.0.0", "10.1.0.255", "not-an-ip", "fd00::1"])
def test_unusable_specific_address_is_invalid_config(ipam, store, bad):
    p = pool(ipam, subnet="10.1.0.0/24")
    with pytest.raises(InvalidConfig):
        addr(ipam, p.pool_id, bad)
    assert store.count("address") == 0


def test_unknown_pool_is_not_found(ipam):
    with pytest.raises(NotFound):
        addr(ipam, "LocalDefault/10.9.0.0/24")


def test_exhaustion_is_conflict(ipam):
    p = pool(ipam, subnet="10.1.0.0/29")  # .1 - .6 usable
    got = [addr(ipam, p.pool_id, gateway=True)] + [addr(ipam, p.pool_id) for _ in range(5)]
    assert got == [f"10.1.0.{i}" for i in range(1, 7)]
    with pytest.raises(Conflict):
        addr(ipam, p.pool_id)


def test_network_and_broadcast_never_allocated(ipam):
    p = pool(ipam, subnet="10.1.0.0/24")
    got = {addr(ipam, p.pool_id) for _ in range(254)}
    assert len(got) == 254
    assert "10.1.0.0" not in got and "10.1.0.255" not in got
    with pytest.raises(Conflict):
        addr(ipam, p.pool_id)


def test_ip_range_reaching_subnet_edges_excludes_network_and_broadcast(ipam):
    p = pool(ipam, subnet="10.1.0.0/28", ip_range="10.1.0.0/28")
    got = [addr(ipam, p.pool_id) for _ in range(14)]
    assert got[0] == "10.1.0.1" and got[-1] == "10.1.0.14"
    with pytest.raises(Conflict):
        addr(ipam, p.pool_id)


def test_release_then_round_robin(ipam):
    p = pool(ipam, subnet="10.1.0.0/29")
    assert addr(ipam, p.pool_id, gateway=True) == "10.1.0.1"
    a, b = addr(ipam, p.pool_id), addr(ipam, p.pool_id)
    assert (a, b) == ("10.1.0.2", "10.1.0.3")
    ipam.release_address(pool_id=p.pool_id, address=a)
    assert addr(ipam, p.pool_id) == "10.1.0.4"  # the released .2 is not handed out at once
    assert addr(ipam, p.pool_id) == "10.1.0.5"
    assert addr(ipam, p.pool_id) == "10.1.0.6"
    assert addr(ipam, p.pool_id) == "10.1.0.2"  # only once the cursor came round
    with pytest.raises(Conflict):
        addr(ipam, p.pool_id)


def test_released_address_can_be_requested_explicitly(ipam):
    p = pool(ipam, subnet="10.1.0.0/24")
    a = addr(ipam, p.pool_id)
    ipam.release_address(pool_id=p.pool_id, address=a)
    assert addr(ipam, p.pool_id, a) == a


def test_dynamic_allocation_skips_explicitly_requested(ipam):
    p = pool(ipam, subnet="10.1.0.0/24")
    addr(ipam, p.pool_id, "10.1.0.2")
    addr(ipam, p.pool_id, "10.1.0.3")
    assert addr(ipam, p.pool_id) == "10.1.0.1"
    assert addr(ipam, p.pool_id) == "10.1.0.4"


def test_ip_range_respected(ipam):
    p = pool(ipam, subnet="10.1.0.0/24", ip_range="10.1.0.128/25")
    assert addr(ipam, p.pool_id, gateway=True) == "10.1.0.1"  # gateway: first of the subnet
    rng = ipaddress.ip_network("10.1.0.128/25")
    got = [addr(ipam, p.pool_id) for _ in range(127)]  # .128 - .254
    assert got[0] == "10.1.0.128"
    assert all(ipaddress.ip_address(a) in rng for a in got)
    assert "10.1.0.255" not in got and len(set(got)) == 127
    with pytest.raises(Conflict):
        addr(ipam, p.pool_id)
    # outside the range but inside the subnet: still allowed on request (like Docker)
    assert addr(ipam, p.pool_id, "10.1.0.50") == "10.1.0.50"


def test_never_handed_out_twice_under_concurrency(ipam):
    p = pool(ipam, subnet="10.1.0.0/23")
    results: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(60):
                a = addr(ipam, p.pool_id)
                with lock:
                    results.append(a)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 480 and len(set(results)) == 480


def test_state_survives_reopening_the_store(tmp_path):
    s1 = SqliteStore(str(tmp_path))
    ipam1 = DefaultIpam(s1)
    p = pool(ipam1, subnet="10.1.0.0/29")
    assert addr(ipam1, p.pool_id, gateway=True) == "10.1.0.1"
    taken = {addr(ipam1, p.pool_id) for _ in range(3)}  # .2 .3 .4
    ipam1.release_address(pool_id=p.pool_id, address="10.1.0.3")
    s1.close()

    s2 = SqliteStore(str(tmp_path))
    try:
        ipam2 = DefaultIpam(s2)
        with pytest.raises(Conflict):  # the pool itself is remembered
            pool(ipam2, subnet="10.1.0.0/24")
        with pytest.raises(AlreadyExists):
            addr(ipam2, p.pool_id, "10.1.0.2")
        with pytest.raises(AlreadyExists):
            addr(ipam2, p.pool_id, gateway=True)
        rest = {addr(ipam2, p.pool_id) for _ in range(3)}
        assert rest == {"10.1.0.3", "10.1.0.5", "10.1.0.6"}
        assert not rest & (taken - {"10.1.0.3"})
        with pytest.raises(Conflict):
            addr(ipam2, p.pool_id)
    finally:
        s2.close()
