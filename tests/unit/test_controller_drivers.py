"""What the controller asks of drivers by capability and by configuration, and their life cycle.

- the gateway network (Docker's docker_gwbridge) comes from whichever driver declares
  ``DriverInfo.gateway_bridge``, and a container that needs it is refused, leaving
  nothing, when none does;
- ``create_network`` without a driver takes the controller's ``default_driver``;
- drivers are instances of their controller, and ``close`` stops their threads
  through the ``shutdown`` hook.
"""

from __future__ import annotations

import threading

import pytest

from netcore import names
from netcore.cluster import Cluster
from netcore.controller import Controller
from netcore.errors import InvalidConfig
from netcore.hookspecs import hookimpl
from netcore.models import Attachment, DriverInfo, Endpoint, EngineContext, JoinInfo, Network, Sandbox
from netcore.osl.fake import FakeKernel
from netcore.osl.nftnone import NoFirewall
from netcore.store.etcd import StoreUnavailable
from netcore.store.memory import MemoryStore
from tests.unit.fakedriver import FakeDriver


class Spanning(FakeDriver):
    """A multi-host driver whose join gives no default route (as overlay's)."""

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        info = super().join(network, endpoint, sandbox)
        return JoinInfo(src_ifname=info.src_ifname, gateway=None)


class Gateway(FakeDriver):
    """A local driver offering the gateway network."""

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="gw", gateway_bridge=True, gateway_options={"icc": "false"})


def _controller(root: str, kernel: FakeKernel, plugins: list[tuple[str, object]], **kw: object) -> Controller:
    return Controller(root, store=MemoryStore(), firewall=NoFirewall(), kernel=kernel, plugins=plugins, autoload=False, **kw)


@pytest.fixture
def cluster() -> Cluster:
    return Cluster("memory://", "192.0.2.1", store=MemoryStore())


def _box(c: Controller, net: Network) -> Sandbox:
    return c.setup_sandbox("5b" * 32, "web", [Attachment(net.name)])


def test_the_gateway_network_comes_from_the_driver_declaring_it(tmp_path, cluster):
    kernel, log = FakeKernel(), []
    c = _controller(str(tmp_path), kernel, [("span", Spanning(kernel, log, scope="global")), ("gw", Gateway(kernel, log))], cluster=cluster)
    c.start()
    try:
        sb = _box(c, c.create_network("ov", "span", subnet="10.77.0.0/24"))
        gw = c.network(names.GATEWAY_NETWORK)
        assert gw.driver == "gw"
        assert gw.options == {"icc": "false"}
        eps = {c.network(e.network_id).name: e for e in c.sandbox_endpoints(c.sandbox(sb.id))}
        assert set(eps) == {"ov", names.GATEWAY_NETWORK}
        assert c.sandbox(sb.id).gateway_endpoint == eps[names.GATEWAY_NETWORK].id  # egress through it
    finally:
        c.reset()
        c.close()


def test_without_a_gateway_driver_the_container_is_refused_and_nothing_is_left(tmp_path, cluster):
    kernel, log = FakeKernel(), []
    c = _controller(str(tmp_path), kernel, [("span", Spanning(kernel, log, scope="global"))], cluster=cluster)
    c.start()
    try:
        net = c.create_network("ov", "span", subnet="10.77.0.0/24")
        with pytest.raises(InvalidConfig, match="gateway_bridge"):
            _box(c, net)
        assert c.sandbox_ids() == []
        assert c.endpoints(net) == []
        assert kernel.netns_names() == []
        assert [n.name for n in c.networks()] == ["ov"]
    finally:
        c.reset()
        c.close()


def test_create_network_without_a_driver_takes_the_configured_default(tmp_path):
    kernel = FakeKernel()
    c = _controller(str(tmp_path), kernel, [("fake", FakeDriver(kernel, []))], default_driver="fake")
    c.start()
    try:
        assert c.create_network("n").driver == "fake"
    finally:
        c.reset()
        c.close()


def test_create_network_without_a_driver_or_a_default_is_refused(tmp_path):
    kernel = FakeKernel()
    c = _controller(str(tmp_path), kernel, [("fake", FakeDriver(kernel, []))])
    c.start()
    try:
        with pytest.raises(InvalidConfig, match="no network driver given"):
            c.create_network("n")
        assert c.networks() == []
    finally:
        c.close()


def test_each_controller_builds_its_own_drivers(tmp_path):
    a = Controller(str(tmp_path / "a"), store=MemoryStore(), firewall=NoFirewall(), kernel=FakeKernel())
    b = Controller(str(tmp_path / "b"), store=MemoryStore(), firewall=NoFirewall(), kernel=FakeKernel())
    for name in ("bridge", "host", "none", "overlay", "routed"):
        mine, theirs = a.hooks.pm.get_plugin(name), b.hooks.pm.get_plugin(name)
        assert mine is not None and theirs is not None
        assert mine is not theirs
        assert type(mine) is type(theirs)
    a.close()
    b.close()


def test_autoload_off_still_loads_the_essential_drivers(tmp_path, monkeypatch):
    monkeypatch.setenv("NETCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    c = Controller(str(tmp_path), store=MemoryStore(), firewall=NoFirewall(), kernel=FakeKernel(), essential=["bridge", "none"])
    assert c.drivers() == ["bridge", "none"]
    assert c.driver_info("bridge").gateway_bridge is True
    c.close()


class Threaded(FakeDriver):
    """A driver with a background thread, stopped by the ``shutdown`` hook."""

    def __init__(self, kernel: FakeKernel, log: list[tuple[str, ...]]) -> None:
        super().__init__(kernel, log)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.stop.wait, daemon=True)

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        super().configure(context)
        self.thread.start()

    @hookimpl
    def shutdown(self) -> None:
        self.log.append(("shutdown",))
        self.stop.set()
        self.thread.join()


def test_close_stops_the_drivers_threads(tmp_path):
    kernel, log = FakeKernel(), []
    drv = Threaded(kernel, log)
    c = _controller(str(tmp_path), kernel, [("threaded", drv)])
    c.start()
    assert drv.thread.is_alive()
    c.close()
    assert not drv.thread.is_alive()
    assert log.count(("shutdown",)) == 1


class AwayBlocks(MemoryStore):
    """A cluster store that does not answer for routed's blocks: routed retries in a thread."""

    def list_with_revision(self, kind: str):  # type: ignore[override]
        if kind == "routed-block":
            raise StoreUnavailable("etcd at memory:// did not answer")
        return super().list_with_revision(kind)


def _retry_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "routed-watch-later"]


def test_close_stops_the_routed_drivers_retry_thread(tmp_path):
    before = set(_retry_threads())
    cluster = Cluster("memory://", "192.0.2.1", store=AwayBlocks())
    c = Controller(str(tmp_path), store=MemoryStore(), firewall=NoFirewall(), kernel=FakeKernel(), cluster=cluster)
    c.start()
    started = set(_retry_threads()) - before
    assert len(started) == 1
    c.close()
    (thread,) = started
    assert not thread.is_alive()
