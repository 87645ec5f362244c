"""What ``netcore plugins`` reports (netcore/plugin_info.py) and the hook-call trace
(netcore/hooktrace.py), on a real plugin manager with the entry points installed."""

from __future__ import annotations

import importlib.metadata as md
import logging

import pytest

from netcore import InvalidConfig, Network, hookimpl
from netcore.ipam import DefaultIpam
from netcore.plugin_info import as_dicts, describe
from netcore.plugins import Hooks, make_plugin_manager
from netcore.store.memory import MemoryStore


def test_each_driver_with_its_distribution_version_and_kind():
    ipam = DefaultIpam(MemoryStore(), lambda: [])
    pm = make_plugin_manager([("default", ipam)])
    rows = {(i.name, i.kind): i for i in describe(pm)}
    assert rows[("macvlan", "network")].distribution == "netcore"
    assert rows[("macvlan", "network")].version == md.version("netcore")
    assert rows[("macvlan", "network")].module == "drivers.macvlan"
    dummy = rows[("dummy", "network")]  # tests/plugins/netcore-dummy-driver, installed by setup.sh
    assert (dummy.distribution, dummy.version) == ("netcore-dummy-driver", md.version("netcore-dummy-driver"))
    assert rows[("default", "ipam")].distribution == "netcore"  # registered by the engine, not an entry point
    assert ("default", "network") not in rows and ("macvlan", "ipam") not in rows
    kinds = [i.kind for i in describe(pm)]
    assert kinds == sorted(kinds, key=["network", "ipam"].index)
    assert as_dicts([rows[("macvlan", "network")]])[0] == {
        "Name": "macvlan", "Kind": "network", "Distribution": "netcore", "Version": md.version("netcore"),
        "Module": "drivers.macvlan",
    }


class Picky:
    @hookimpl
    def create_network(self, network: Network) -> None:
        if network.options:
            raise InvalidConfig("unknown picky driver option 'x'")

    @hookimpl
    def delete_network(self, network: Network) -> None:
        return None

    @hookimpl
    def network_created(self, network: Network) -> None:
        return None


@pytest.mark.parametrize("setting, traced", [("1", True), ("picky", True), ("delete_network", True), ("bridge", False), ("0", False)])
def test_trace_names_driver_hook_arguments_outcome_and_time(monkeypatch, caplog, setting, traced):
    monkeypatch.setenv("NETCORE_TRACE_HOOKS", setting)
    hooks = Hooks(make_plugin_manager([("picky", Picky())], autoload=False))
    net = Network(id="3f2a9c01d4e5" + "0" * 52, name="web", driver="picky", options={"x": "1"})
    caplog.set_level(logging.INFO, logger="netcore.hooks")
    with pytest.raises(InvalidConfig):
        hooks.driver("picky").create_network(network=net)
    hooks.driver("picky").delete_network(network=net)
    hooks.notify("network_created", network=net)
    lines = [r.getMessage() for r in caplog.records if r.name == "netcore.hooks"]
    if not traced:
        assert lines == []
        return
    if setting == "delete_network":
        assert len(lines) == 1 and lines[0].startswith("hook picky.delete_network(network=web/3f2a9c01d4e5) -> None [")
        return
    assert lines[0].startswith("hook picky.create_network(network=web/3f2a9c01d4e5) raised InvalidConfig: unknown picky driver option 'x' [")
    assert lines[0].endswith(" ms]")
    assert lines[1].startswith("hook picky.delete_network(network=web/3f2a9c01d4e5) -> None [")
    assert lines[2].startswith("hook picky.network_created(network=web/3f2a9c01d4e5) -> [] [")  # a broadcast: pluggy's list


def test_a_driver_registered_by_hand_is_traced_to_its_entry_point():
    """A controller may make its own instance of an entry point's driver: still its distribution."""
    from netcore_dummy_driver import plugin

    pm = make_plugin_manager([("dummy", type(plugin)())], autoload=False)
    (row,) = describe(pm)
    assert (row.name, row.distribution, row.version) == ("dummy", "netcore-dummy-driver", md.version("netcore-dummy-driver"))


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class Odd:
    @hookimpl
    def create_network(self, network: Network) -> None:
        return None

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint) -> dict:
        return Unprintable()  # type: ignore[return-value]


def test_a_trace_that_cannot_print_never_fails_the_call(monkeypatch, caplog):
    monkeypatch.setenv("NETCORE_TRACE_HOOKS", "1")
    hooks = Hooks(make_plugin_manager([("odd", Odd())], autoload=False))
    caplog.set_level(logging.INFO, logger="netcore.hooks")
    got = hooks.driver("odd").endpoint_oper_info(network=Network(id="a" * 64, name="n", driver="odd"), endpoint=Unprintable())
    assert isinstance(got, Unprintable)
    assert any("hook odd.endpoint_oper_info(...) (trace failed: RuntimeError)" in r.getMessage() for r in caplog.records)
