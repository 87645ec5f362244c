"""Names of kernel objects, ids and MACs (netcore/names.py)."""

from __future__ import annotations

import re

import pytest

from netcore import names


def test_new_id_is_64_hex_and_random():
    ids = {names.new_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", i) for i in ids)


@pytest.mark.parametrize("fn", [names.bridge_name, names.veth_name])
def test_link_names_fit_ifnamsiz_and_carry_prefix(fn):
    for _ in range(20):
        name = fn(names.new_id())
        assert len(name) <= names.IFNAMSIZ == 15
        assert name.startswith("nc")
        assert names.valid_ifname(name)


def test_link_names_differ_per_object_and_kind():
    a, b = names.new_id(), names.new_id()
    assert names.bridge_name(a) != names.bridge_name(b)
    assert names.bridge_name(a) != names.veth_name(a)
    assert names.bridge_name(a) == names.bridge_name(a)  # stable, so reconcile can find it


def test_link_alias_round_trip():
    oid = names.new_id()
    alias = names.link_alias("abc123", oid)
    assert alias.startswith("netcore:")
    assert names.parse_link_alias(alias) == ("abc123", oid)


@pytest.mark.parametrize("alias", [None, "", "docker0", "netcore", "netcore:onlytag", "netcore:a:b:c", "other:a:b"])
def test_parse_link_alias_rejects_others(alias):
    assert names.parse_link_alias(alias) is None


@pytest.mark.parametrize(
    "ip,mac",
    [
        ("172.17.0.2", "02:42:ac:11:00:02"),
        ("172.17.0.2/16", "02:42:ac:11:00:02"),
        ("10.0.255.1", "02:42:0a:00:ff:01"),
        ("0.0.0.0", "02:42:00:00:00:00"),
    ],
)
def test_mac_from_ipv4(ip, mac):
    assert names.mac_from_ipv4(ip) == mac


def test_mac_from_ipv4_refuses_garbage():
    with pytest.raises(ValueError):
        names.mac_from_ipv4("fd00::1")


def test_table_name_default_root_vs_other():
    assert names.table_name("/var/lib/netcore") == "netcore"
    assert names.table_name("/var/lib/netcore/") == "netcore"
    other = names.table_name("/tmp/nc-test")
    assert other == f"netcore-{names.engine_tag('/tmp/nc-test')}"
    assert re.fullmatch(r"netcore-[0-9a-f]{6}", other)
    assert names.table_name("/tmp/nc-test2") != other


def test_engine_tag_stable_and_slash_insensitive():
    assert names.engine_tag("/srv/a") == names.engine_tag("/srv/a/")
    assert names.engine_tag("/srv/a") != names.engine_tag("/srv/b")
    assert re.fullmatch(r"[0-9a-f]{6}", names.engine_tag("/srv/a"))


@pytest.mark.parametrize("name", ["web", "a", "A1", "my_net.v2-x", "0abc", "x" * 128])
def test_valid_object_names(name):
    assert names.valid_object_name(name)


@pytest.mark.parametrize("name", ["", "-web", ".web", "_web", "a b", "a/b", "a:b", "ü", "x" * 129])
def test_invalid_object_names(name):
    assert not names.valid_object_name(name)


def test_object_name_with_trailing_newline_is_invalid():
    assert not names.valid_object_name("web\n")


@pytest.mark.parametrize(
    "name,ok",
    [
        ("eth0", True), ("x" * 15, True), ("br_0.v-1", True), ("0br", True),
        ("x" * 16, False), ("", False), ("a/b", False), ("a b", False), ("a\tb", False), ("a\nb", False),
        (".", False), ("..", False), ("a:b", False), ('a"b;}', False), ("a;b", False), ("-br", False),
        ("brü", False), ("a\x00b", False), ("a$b", False), ("a'b", False),
    ],
)
def test_valid_ifname(name, ok):
    assert names.valid_ifname(name) is ok
