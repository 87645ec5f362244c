"""netcore.osl.addrs.of_link, the verb behind ``--cluster-advertise IFACE`` (read-only, the test's own netns)."""

from __future__ import annotations

from netcore.osl import addrs
from runtime.engine.config import load


def test_the_addresses_of_a_link_by_name():
    assert addrs.of_link("lo") == ["127.0.0.1"]
    assert addrs.of_link("nc-no-such-link") == []


def test_cluster_advertise_takes_an_interface_name():
    cfg = load(None, {"cluster-store": "etcd://192.0.2.1:2379", "cluster-advertise": "lo"})
    assert cfg.advertise == "127.0.0.1"
