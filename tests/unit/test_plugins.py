"""The plugin manager, hookspec validation and per-driver hook callers (netcore/plugins.py)."""

from __future__ import annotations

import pytest

from netcore import DriverInfo, EngineContext, Network, hookimpl
from netcore.errors import NotFound, PluginError
from netcore.ipam import DefaultIpam
from netcore.plugins import ENTRY_POINT_GROUP, Hooks, make_plugin_manager

BUILTINS = {"bridge", "host", "none", "routed"}


def net(name: str = "web", driver: str = "a") -> Network:
    return Network(id="f" * 64, name=name, driver=driver)


class FakeDriver:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name=self.name)

    @hookimpl
    def create_network(self, network: Network) -> None:
        self.calls.append(("create_network", network.name))

    @hookimpl
    def delete_network(self, network: Network) -> None:
        self.calls.append(("delete_network", network.name))


class Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def network_created(self, network: Network) -> str:
        self.seen.append(network.name)
        return "observed"


# ------------------------------------------------------------------ validation ----


class Misspelled:
    @hookimpl
    def create_network(self, network):
        pass

    @hookimpl
    def delete_netwrok(self, network):  # typo: no such hook
        pass


class ExtraArg:
    @hookimpl
    def create_network(self, network, netns):  # netns is not in the spec
        pass


class Fine:
    @hookimpl
    def create_network(self, network):  # fewer arguments than the spec is allowed
        pass

    def helper_without_marker(self, anything):  # not a hook: ignored
        pass




def test_misspelled_hook_is_refused_naming_plugin_and_hook():
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=[("typo-driver", Misspelled())], autoload=False)
    msg = str(info.value)
    assert "typo-driver" in msg
    assert "delete_netwrok" in msg


def test_impl_argument_not_in_spec_is_refused_naming_plugin_and_hook():
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=[("extra-arg", ExtraArg())], autoload=False)
    msg = str(info.value)
    assert "extra-arg" in msg
    assert "create_network" in msg
    assert "netns" in msg


def test_malformed_plugin_is_refused():
    for bad in (Misspelled(), ExtraArg()):
        with pytest.raises(PluginError):
            make_plugin_manager(plugins=[("bad", bad)], autoload=False)


def test_well_formed_plugin_passes_check_pending():
    pm = make_plugin_manager(plugins=[("fine", Fine())], autoload=False)
    pm.check_pending()
    assert pm.get_plugin("fine") is not None
    assert Hooks(pm).drivers() == ["fine"]


def test_optional_unknown_hook_is_allowed():
    class Optional:
        @hookimpl(optionalhook=True)
        def hook_of_a_future_version(self):
            pass

    pm = make_plugin_manager(plugins=[("opt", Optional())], autoload=False)
    assert pm.get_plugin("opt") is not None


# ------------------------------------------------------------------ routing ----


def test_driver_subset_reaches_only_that_driver():
    a, b = FakeDriver("a"), FakeDriver("b")
    hooks = Hooks(make_plugin_manager(plugins=[("a", a), ("b", b)], autoload=False))
    hooks.driver("a").create_network(network=net("web"))
    assert a.calls == [("create_network", "web")]
    assert b.calls == []
    hooks.driver("b").delete_network(network=net("db"))
    assert a.calls == [("create_network", "web")]
    assert b.calls == [("delete_network", "db")]


def test_driver_subset_firstresult_is_the_drivers_own_answer():
    hooks = Hooks(make_plugin_manager(plugins=[("a", FakeDriver("a")), ("b", FakeDriver("b"))], autoload=False))
    # without the subset, firstresult would return whichever plugin pluggy calls first
    assert hooks.driver("a").driver_info().name == "a"
    assert hooks.driver("b").driver_info().name == "b"
    assert hooks.driver("a") is hooks.driver("a")  # relays are cached


def test_driver_subset_stays_exclusive_after_a_later_registration():
    a, b, late = FakeDriver("a"), FakeDriver("b"), FakeDriver("late")
    hooks = Hooks(make_plugin_manager(plugins=[("a", a), ("b", b)], autoload=False))
    assert hooks.driver("a").driver_info().name == "a"  # relay of a built and cached here
    hooks.pm.register(late, name="late")
    assert "late" in hooks.drivers()
    hooks.driver("a").create_network(network=net("web"))
    assert late.calls == []
    assert hooks.driver("a").driver_info().name == "a"


def test_driver_subset_does_not_reach_observers():
    a, obs = FakeDriver("a"), Observer()
    hooks = Hooks(make_plugin_manager(plugins=[("a", a), ("obs", obs)], autoload=False))
    assert hooks.driver("a").network_created(network=net()) == []  # the driver has no impl
    assert obs.seen == []


def test_unknown_driver_is_not_found_naming_it():
    hooks = Hooks(make_plugin_manager(plugins=[("a", FakeDriver("a"))], autoload=False))
    with pytest.raises(NotFound, match="'macvlan'") as info:
        hooks.driver("macvlan")
    assert "a" in str(info.value)  # lists what is loaded
    with pytest.raises(NotFound, match="'nope'"):
        hooks.ipam("nope")


def test_observer_is_not_a_driver():
    hooks = Hooks(make_plugin_manager(plugins=[("a", FakeDriver("a")), ("obs", Observer())], autoload=False))
    with pytest.raises(NotFound):
        hooks.driver("obs")


def test_drivers_and_ipam_drivers_lists(store):
    hooks = Hooks(
        make_plugin_manager(
            plugins=[("b", FakeDriver("b")), ("a", FakeDriver("a")), ("default", DefaultIpam(store)), ("obs", Observer())],
            autoload=False,
        )
    )
    assert hooks.drivers() == ["a", "b"]
    assert hooks.ipam_drivers() == ["default"]
    pool = hooks.ipam("default").request_pool(network_id="n", subnet="10.5.0.0/24", ip_range=None, options={})
    assert pool.subnet == "10.5.0.0/24"


def test_observers_broadcast_to_all():
    o1, o2, a = Observer(), Observer(), FakeDriver("a")
    hooks = Hooks(make_plugin_manager(plugins=[("o1", o1), ("o2", o2), ("a", a)], autoload=False))
    hooks.notify("network_created", network=net("web"))
    assert o1.seen == ["web"] and o2.seen == ["web"]
    assert a.calls == []


def test_a_failing_observer_does_not_silence_the_others(caplog):
    class Broken:
        @hookimpl
        def network_created(self, network):
            raise RuntimeError("boom")

    o1, o2 = Observer(), Observer()
    hooks = Hooks(make_plugin_manager(plugins=[("o1", o1), ("broken", Broken()), ("o2", o2)], autoload=False))
    hooks.notify("network_created", network=net("web"))
    assert o1.seen == ["web"] and o2.seen == ["web"]
    assert "plugin broken failed in network_created" in caplog.text


def test_observers_are_called_through_pluggys_hook_callers():
    """Not by hand: pluggy's call monitoring (what NETCORE_TRACE_HOOKS uses) sees each observer call."""
    o1, o2 = Observer(), Observer()
    pm = make_plugin_manager(plugins=[("o1", o1), ("o2", o2)], autoload=False)
    calls: list[tuple[str, list[str]]] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append((name, [i.plugin_name for i in impls])), lambda *a: None)
    Hooks(pm).notify("network_created", network=net("web"))
    assert sorted(calls) == [("network_created", ["o1"]), ("network_created", ["o2"])]
    assert o1.seen == ["web"] and o2.seen == ["web"]


def test_configure_is_historic_for_late_plugins():
    class Configurable:
        def __init__(self) -> None:
            self.ctx = None

        @hookimpl
        def configure(self, context):
            self.ctx = context

    early, late = Configurable(), Configurable()
    pm = make_plugin_manager(plugins=[("early", early)], autoload=False)
    ctx = EngineContext(root="/tmp/x", tag="abc123", firewall=None)
    Hooks(pm).configure(ctx)
    assert early.ctx is ctx
    pm.register(late, name="late")
    assert late.ctx is ctx


# ------------------------------------------------------------------ builtins ----


def test_autoload_registers_every_builtin_and_passes_check_pending(store):
    pm = make_plugin_manager(plugins=[("default", DefaultIpam(store))], autoload=True)
    pm.check_pending()
    hooks = Hooks(pm)
    assert BUILTINS <= set(hooks.drivers())
    assert hooks.ipam_drivers() == ["default", "routed"]  # routed is its networks' IPAM too (per-host blocks)
    for name in BUILTINS:
        # the entry-point name is the name users pass to -d: it must match the driver's own
        assert hooks.driver(name).driver_info().name == name


def test_builtins_are_entry_points_of_the_group():
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert found["bridge"] == "drivers.bridge:BridgeDriver"  # a class: one instance per controller
    assert BUILTINS <= set(found)


def test_addressing_of_builtins():
    hooks = Hooks(make_plugin_manager(autoload=True))
    assert hooks.driver("bridge").driver_info().addressing is True
    assert hooks.driver("host").driver_info().addressing is False
    assert hooks.driver("none").driver_info().addressing is False
    assert hooks.driver("bridge").driver_info().host_namespace is False
    assert hooks.driver("none").driver_info().host_namespace is False  # none: own netns, loopback only


def test_host_driver_declares_host_namespace():
    """Without it the controller would give a --network host container a private netns."""
    hooks = Hooks(make_plugin_manager(autoload=True))
    assert hooks.driver("host").driver_info().host_namespace is True


def test_autoload_can_be_disabled_by_env(monkeypatch):
    monkeypatch.setenv("NETCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    hooks = Hooks(make_plugin_manager(plugins=[("a", FakeDriver("a"))], autoload=True))
    assert hooks.drivers() == ["a"]


def test_autoload_false_loads_nothing_extra():
    hooks = Hooks(make_plugin_manager(autoload=False))
    assert hooks.drivers() == []


def test_blocked_builtin_is_not_loaded():
    hooks = Hooks(make_plugin_manager(autoload=True, blocked=["bridge"]))
    assert "bridge" not in hooks.drivers()
    assert {"host", "none"} <= set(hooks.drivers())
    with pytest.raises(NotFound, match="bridge"):
        hooks.driver("bridge")


def test_builtin_none_and_host_refuse_options():
    from netcore.errors import InvalidConfig

    hooks = Hooks(make_plugin_manager(autoload=True))
    for name in ("none", "host"):
        with pytest.raises(InvalidConfig, match="'foo'"):
            hooks.driver(name).create_network(network=Network(id="1" * 64, name="x", driver=name, options={"foo": "1"}))
        assert hooks.driver(name).create_network(network=Network(id="1" * 64, name="x", driver=name)) is None
