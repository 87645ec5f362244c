"""A third-party driver is found through the ``netcore.drivers`` entry point like a builtin.

Needs the package in tests/plugins/netcore-dummy-driver installed::

    .venv/bin/pip install -e tests/plugins/netcore-dummy-driver
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from netcore import Endpoint, InvalidConfig, JoinInfo, Network, Sandbox
from netcore.ipam import DefaultIpam
from netcore.plugins import ENTRY_POINT_GROUP, Hooks, make_plugin_manager

_INSTALLED = any(ep.name == "dummy" for ep in entry_points(group=ENTRY_POINT_GROUP))

pytestmark = pytest.mark.skipif(
    not _INSTALLED,
    reason="netcore-dummy-driver is not installed: .venv/bin/pip install -e tests/plugins/netcore-dummy-driver",
)


def test_entry_point_points_at_the_plugin_object():
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "dummy"]
    assert ep.value == "netcore_dummy_driver:plugin"
    assert ep.load().__class__.__name__ == "DummyDriver"


def test_autoload_finds_dummy_next_to_the_builtins(store):
    pm = make_plugin_manager(plugins=[("default", DefaultIpam(store))], autoload=True)
    pm.check_pending()  # its hooks match the specs
    hooks = Hooks(pm)
    assert {"bridge", "host", "none", "dummy"} <= set(hooks.drivers())
    info = hooks.driver("dummy").driver_info()
    assert info.name == "dummy"
    assert info.addressing is True


def test_dummy_can_be_blocked():
    hooks = Hooks(make_plugin_manager(autoload=True, blocked=["dummy"]))
    assert "dummy" not in hooks.drivers()


def test_dummy_logs_each_hook_call(tmp_path, monkeypatch):
    log = tmp_path / "dummy.log"
    monkeypatch.setenv("NETCORE_DUMMY_LOG", str(log))
    drv = Hooks(make_plugin_manager(autoload=True)).driver("dummy")
    net = Network(id="d" * 64, name="web", driver="dummy", subnet="10.9.0.0/24", gateway="10.9.0.1")
    ep = Endpoint(id="e" * 64, network_id=net.id, name="c1", address="10.9.0.2/24", ifname="eth0")
    sb = Sandbox(id="s" * 64, netns_path="/run/netns/nowhere", name="c1")

    assert drv.create_network(network=net) is None
    assert drv.create_endpoint(network=net, endpoint=ep) is None
    assert drv.join(network=net, endpoint=ep, sandbox=sb) == JoinInfo()
    drv.leave(network=net, endpoint=ep, sandbox=sb, teardown=True)  # its leave takes no ``teardown``: still called
    drv.delete_endpoint(network=net, endpoint=ep)
    drv.delete_network(network=net)
    assert log.read_text().splitlines() == [
        "create_network web",
        "create_endpoint web c1",
        "join web c1",
        "leave web c1",
        "delete_endpoint web c1",
        "delete_network web",
    ]


def test_dummy_refuses_options_and_logs_nothing(tmp_path, monkeypatch):
    log = tmp_path / "dummy.log"
    monkeypatch.setenv("NETCORE_DUMMY_LOG", str(log))
    drv = Hooks(make_plugin_manager(autoload=True)).driver("dummy")
    with pytest.raises(InvalidConfig, match="'x'"):
        drv.create_network(network=Network(id="d" * 64, name="web", driver="dummy", options={"x": "1"}))
    assert not log.exists()
