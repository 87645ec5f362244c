"""The engine's settings (runtime/engine/config.py): a daemon.json-style file merged with flags."""

from __future__ import annotations

import json

import pytest

from netcore import InvalidConfig
from runtime.engine.config import DEFAULT_TTL, DaemonConfig, load


def write(tmp_path, data) -> str:
    path = tmp_path / "daemon.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_no_file_no_flags_gives_the_defaults():
    assert load(None, {}) == DaemonConfig(dns=[], cluster_store=None, advertise=None, ttl=DEFAULT_TTL)


def test_file_and_flags_are_merged(tmp_path):
    path = write(tmp_path, {"dns": ["192.0.2.53"], "cluster-store-opts": {"discovery.ttl": "7"}})
    cfg = load(path, {"cluster-store": "etcd://192.0.2.1:2379", "cluster-advertise": "192.0.2.10:2376", "dns": None})
    assert cfg == DaemonConfig(dns=["192.0.2.53"], cluster_store="etcd://192.0.2.1:2379", advertise="192.0.2.10", ttl=7)


def test_flag_opts_as_a_list_of_key_value():
    cfg = load(None, {"cluster-store": "etcd://h:1", "cluster-advertise": "192.0.2.10", "cluster-store-opts": ["discovery.ttl=30"]})
    assert cfg.ttl == 30


@pytest.mark.parametrize(
    "data,flags,message",
    [
        ({"dns": ["192.0.2.53"]}, {"dns": ["192.0.2.54"]}, "specified both as a flag and in the configuration file: dns"),
        ({"debug": True}, {}, "unknown key 'debug' in config file"),
        ("{not json", {}, "is not valid JSON"),
        ("[1, 2]", {}, "must hold a JSON object"),
        ({"dns": ["not-an-ip"]}, {}, "invalid IPv4 address 'not-an-ip' for --dns"),
        ({"cluster-store": "consul://h:1", "cluster-advertise": "192.0.2.1"}, {}, "expected etcd://HOST:PORT"),
        ({"cluster-store": "etcd://h:1"}, {}, "--cluster-store and --cluster-advertise go together"),
        ({"cluster-store": "etcd://h:1", "cluster-advertise": "192.0.2.1", "cluster-store-opts": {"discovery.ttl": "1"}}, {},
         "invalid discovery.ttl '1'"),
        ({"cluster-store": "etcd://h:1", "cluster-advertise": "192.0.2.1", "cluster-store-opts": {"kv.path": "x"}}, {},
         "unknown --cluster-store-opt 'kv.path'"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(tmp_path, data, flags, message):
    with pytest.raises(InvalidConfig) as exc:
        load(write(tmp_path, data), flags)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_an_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(InvalidConfig, match="cannot read config file"):
        load(str(tmp_path / "missing.json"), {})
