"""The controller's logic on fakes: no root, no kernel, milliseconds.

``MemoryStore``, ``NoFirewall`` and ``FakeKernel`` stand in for SQLite, nftables and
the kernel; ``FakeDriver`` makes its links in the fake kernel as the bridge driver
does in the real one. The same operations run for real in tests/integration.
"""

from __future__ import annotations

from typing import Any

import pytest

from netcore import names
from netcore.controller import ENDPOINT, INTENT, SANDBOX, Controller
from netcore.dns.records import NameIndex
from netcore.errors import AlreadyExists, Conflict, InvalidConfig, KernelError
from netcore.hookspecs import hookimpl
from netcore.models import Attachment, Endpoint, Network, PortBinding, Sandbox
from netcore.osl.fake import FakeKernel
from netcore.osl.nftnone import NoFirewall
from netcore.store.memory import MemoryStore
from tests.unit.fakedriver import FakeDriver


class Names:
    """An observer keeping the embedded DNS's records (its ``NameIndex``) from the controller's notifications."""

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.index = NameIndex()
        self.log = log

    @hookimpl
    def endpoint_joined(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self.log.append(("endpoint_joined", network.name, endpoint.name))
        self.index.add(network, endpoint, sandbox)

    @hookimpl
    def endpoint_left(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self.log.append(("endpoint_left", network.name, endpoint.name))
        self.index.remove(endpoint.id)


class Engine:
    """A started controller on fakes, and handles on each fake."""

    def __init__(self, root: str, host_prefixes: list[str] | None = None) -> None:
        self.log: list[tuple[str, ...]] = []
        self.kernel = FakeKernel(host_prefixes=host_prefixes)
        self.store = MemoryStore()
        self.firewall = NoFirewall()
        self.driver = FakeDriver(self.kernel, self.log)
        self.names = Names(self.log)
        self.c = Controller(
            root,
            store=self.store,
            firewall=self.firewall,
            kernel=self.kernel,
            plugins=[("fake", self.driver), ("names", self.names)],
            autoload=False,
        )
        self.c.start()
        self._n = 0

    def net(self, name: str, subnet: str | None = None, **kw: Any) -> Network:
        return self.c.create_network(name, "fake", subnet=subnet, **kw)

    def box(self, name: str, *nets: Network | Attachment, ports: list[PortBinding] | None = None) -> Sandbox:
        self._n += 1
        atts = [n if isinstance(n, Attachment) else Attachment(n.name) for n in nets]
        return self.c.setup_sandbox(f"{self._n:02d}{name}".ljust(64, "0"), name, atts, ports=ports or [])

    def eps(self, sb: Sandbox) -> dict[str, Endpoint]:
        """The sandbox's endpoints by network name, as stored now."""
        current = self.c.sandbox(sb.id)
        assert current is not None
        return {self.c.network(e.network_id).name: e for e in self.c.sandbox_endpoints(current)}

    def default_gw(self, sb: Sandbox) -> str | None:
        route = self.kernel.routes[sb.netns_path].get("default")
        return route.gateway if route else None

    def gateway_net(self, sb: Sandbox) -> str:
        current = self.c.sandbox(sb.id)
        return next(n for n, e in self.eps(sb).items() if e.id == current.gateway_endpoint)


@pytest.fixture
def eng(tmp_path):
    e = Engine(str(tmp_path))
    yield e
    e.c.reset()
    e.c.close()
    assert e.c.ports.held() == 0


WEB = PortBinding(container_port=80, host_ip="127.0.0.1")


# ---------------------------------------------------------------- joins ----


def test_a_join_moves_names_addresses_and_routes_the_interface(eng):
    net = eng.net("a", "10.10.0.0/24")
    sb = eng.box("c1", net)
    ep = eng.eps(sb)["a"]
    assert ep.address == "10.10.0.2/24" and ep.ifname == "eth0" and ep.gateway == "10.10.0.1"
    assert eng.kernel.link(None, FakeDriver.host_ifname(ep)) is None  # moved out of the host
    link = eng.kernel.link(sb.netns_path, "eth0")
    assert link is not None and link.up and link.addresses == ["10.10.0.2/24"]
    assert eng.default_gw(sb) == "10.10.0.1"
    assert ("disable_ipv6", (sb.netns_path, "eth0")) in eng.kernel.calls
    eng.c.teardown_sandbox(sb.id)
    assert not eng.kernel.netns_exists(sb.netns_path)
    assert eng.store.count(ENDPOINT) == 0 and eng.store.count(SANDBOX) == 0


def test_a_missing_driver_link_fails_the_join_and_leaves_nothing(eng):
    net = eng.net("a", "10.10.0.0/24")
    eng.driver.lose_links = True  # join names a link that is gone
    with pytest.raises(KernelError, match="does not exist"):
        eng.box("c1", net)
    assert eng.store.count(ENDPOINT) == 0 and eng.store.count(SANDBOX) == 0 and eng.store.count(INTENT) == 0
    assert eng.kernel.netns_names() == []


# ---------------------------------------------------------------- gateway election ----


def test_the_first_network_keeps_the_default_route_among_equals(eng):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    sb = eng.box("c1", a, b)
    assert eng.gateway_net(sb) == "a" and eng.default_gw(sb) == "10.10.0.1"
    eng.c.connect(eng.net("c", "10.30.0.0/24").name, sb.id)  # a tie again: no move
    assert eng.gateway_net(sb) == "a" and eng.default_gw(sb) == "10.10.0.1"


def test_a_higher_gw_priority_takes_the_route_and_the_published_ports(eng):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    sb = eng.box("c1", a, ports=[WEB])
    (port,) = eng.eps(sb)["a"].ports
    assert eng.firewall.published == {port: "10.10.0.2"}
    eng.log.clear()
    eng.c.connect("b", sb.id, gw_priority=10)
    eps = eng.eps(sb)
    assert eng.gateway_net(sb) == "b" and eng.default_gw(sb) == "10.20.0.1"
    assert eps["a"].ports == [] and eps["b"].ports[0].container_port == 80
    assert eng.firewall.published == {eps["b"].ports[0]: "10.20.0.2"}
    hooks = [e for e in eng.log if e[0].endswith("external_connectivity")]
    assert hooks == [("revoke_external_connectivity", "a", "c1"), ("program_external_connectivity", "b", "c1")]


def test_an_internal_network_never_takes_the_route(eng):
    a, inner = eng.net("a", "10.10.0.0/24"), eng.net("inner", "10.40.0.0/24", internal=True)
    sb = eng.box("c1", Attachment(inner.name, gw_priority=100), Attachment(a.name))
    assert eng.gateway_net(sb) == "a" and eng.default_gw(sb) == "10.10.0.1"


def test_leaving_the_gateway_hands_route_and_ports_to_the_best_remaining(eng):
    a, b, c = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24"), eng.net("c", "10.30.0.0/24")
    sb = eng.box("c1", Attachment(a.name), Attachment(b.name, gw_priority=5), Attachment(c.name, gw_priority=7), ports=[WEB])
    assert eng.gateway_net(sb) == "c"
    eng.c.disconnect("c", sb.id)
    eps = eng.eps(sb)
    assert eng.gateway_net(sb) == "b" and eng.default_gw(sb) == "10.20.0.1"
    assert eng.firewall.published == {eps["b"].ports[0]: "10.20.0.2"}
    eng.c.disconnect("b", sb.id)
    assert eng.gateway_net(sb) == "a" and eng.default_gw(sb) == "10.10.0.1"
    assert list(eng.firewall.published.values()) == ["10.10.0.2"]
    assert eng.c.ports.held() == 1


def test_leaving_another_endpoint_keeps_the_route_where_it_is(eng):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    sb = eng.box("c1", a, b, ports=[WEB])
    before = len(eng.kernel.called("add_route"))
    eng.c.disconnect("b", sb.id)
    assert eng.gateway_net(sb) == "a" and len(eng.kernel.called("add_route")) == before
    assert list(eng.firewall.published.values()) == ["10.10.0.2"]


# ---------------------------------------------------------------- rollback ----


def test_a_failed_publish_undoes_the_connect_in_reverse_order(eng):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    sb = eng.box("c1", a, ports=[WEB])
    eng.log.clear()
    eng.driver.fail = {"program_external_connectivity"}
    with pytest.raises(KernelError, match="refused by the test"):
        eng.c.connect("b", sb.id, gw_priority=10)
    assert eng.log == [
        ("create_endpoint", "b", "c1"),
        ("join", "b", "c1"),
        ("revoke_external_connectivity", "a", "c1"),  # the old gateway gives its ports up
        ("program_external_connectivity", "b", "c1"),  # fails; the undo stack runs backwards:
        ("program_external_connectivity", "a", "c1"),  # the ports back on the old gateway
        ("leave", "b", "c1"),
        ("delete_endpoint", "b", "c1"),
    ]
    routes = [r[1:3] for r in eng.kernel.called("add_route")]
    assert routes[-2:] == [("default", "10.20.0.1"), ("default", "10.10.0.1")]  # the route moved, then back
    assert eng.default_gw(sb) == "10.10.0.1" and eng.gateway_net(sb) == "a"
    (port,) = eng.eps(sb)["a"].ports
    assert eng.firewall.published == {port: "10.10.0.2"} and eng.c.ports.held() == 1
    assert list(eng.eps(sb)) == ["a"] and eng.store.count(INTENT) == 0
    assert eng.kernel.owned_links("netcore:") == [] and eng.store.count(ENDPOINT, parent=b.id) == 0
    # the address went back: it can be asked for again
    assert eng.eps(eng.box("c2", Attachment(b.name, ip="10.20.0.2")))["b"].address == "10.20.0.2/24"


def test_a_failure_at_the_last_step_undoes_every_earlier_one(eng, monkeypatch):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    sb = eng.box("c1", a, ports=[WEB])
    eng.log.clear()
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "endpoint.store")
    with pytest.raises(KernelError, match="injected"):
        eng.c.connect("b", sb.id, gw_priority=10)
    monkeypatch.delenv("NETCORE_TEST_FAIL_STEP")
    assert [e[0] for e in eng.log] == [
        "create_endpoint", "join", "revoke_external_connectivity", "program_external_connectivity",
        "revoke_external_connectivity", "program_external_connectivity", "leave", "delete_endpoint",
    ]
    assert [e[1] for e in eng.log[4:6]] == ["b", "a"]  # b's publish undone before a's is restored
    assert eng.default_gw(sb) == "10.10.0.1" and eng.gateway_net(sb) == "a"
    assert list(eng.firewall.published.values()) == ["10.10.0.2"] and eng.c.ports.held() == 1
    assert eng.store.count(INTENT) == 0 and eng.store.count(ENDPOINT, parent=b.id) == 0


def test_a_failed_sandbox_setup_removes_its_netns_and_every_endpoint(eng):
    a, b = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    eng.driver.fail = {"join b"}
    with pytest.raises(KernelError):
        eng.box("c1", a, b)
    assert [e[1] for e in eng.log if e[0] == "join"] == ["a", "b"]
    assert [e[:2] for e in eng.log if e[0] in ("leave", "delete_endpoint")] == [
        ("delete_endpoint", "b"), ("leave", "a"), ("delete_endpoint", "a"),
    ]
    assert eng.kernel.netns_names() == [] and eng.store.count(SANDBOX) == 0 and eng.store.count(ENDPOINT) == 0
    assert eng.kernel.owned_links("netcore:") == []


# ---------------------------------------------------------------- IPAM ----


def test_addresses_come_in_order_and_return_on_leave(eng):
    net = eng.net("a", "10.10.0.0/24")
    assert net.gateway == "10.10.0.1"
    s1, s2 = eng.box("c1", net), eng.box("c2", net)
    assert eng.eps(s1)["a"].ip == "10.10.0.2" and eng.eps(s2)["a"].ip == "10.10.0.3"
    with pytest.raises(AlreadyExists, match="10.10.0.2 is already in use"):
        eng.box("c3", Attachment(net.name, ip="10.10.0.2"))
    eng.c.teardown_sandbox(s1.id)
    assert eng.eps(eng.box("c3", Attachment(net.name, ip="10.10.0.2")))["a"].ip == "10.10.0.2"


def test_a_requested_address_is_given_once(eng):
    net = eng.net("a", "10.10.0.0/24")
    sb = eng.box("c1", Attachment(net.name, ip="10.10.0.50"))
    assert eng.eps(sb)["a"].ip == "10.10.0.50"
    with pytest.raises(AlreadyExists):
        eng.box("c2", Attachment(net.name, ip="10.10.0.50"))
    with pytest.raises(InvalidConfig, match="not in subnet"):
        eng.box("c3", Attachment(net.name, ip="10.99.0.5"))
    assert eng.kernel.netns_names() == [sb.netns_path.rsplit("/", 1)[1]]


def test_automatic_pools_avoid_the_hosts_prefixes_and_networks_overlap_nothing(tmp_path):
    eng = Engine(str(tmp_path), host_prefixes=["172.17.0.0/16", "172.18.0.0/16"])
    try:
        first, second = eng.net("a"), eng.net("b")
        assert first.subnet == "172.19.0.0/16" and second.subnet == "172.20.0.0/16"
        with pytest.raises(Conflict):
            eng.net("c", "172.19.128.0/24")
        eng.c.delete_network("a")
        assert eng.net("d").subnet == "172.19.0.0/16"  # the pool went back with its network
    finally:
        eng.c.reset()
        eng.c.close()


def test_a_gateway_the_host_already_holds_is_refused(eng):
    index = eng.kernel.add_link("eth9")
    eng.kernel.add_address(None, index, "10.50.0.1/24")
    with pytest.raises(InvalidConfig, match=r"address of this host \(eth9\)"):
        eng.net("a", "10.50.0.0/24")
    assert eng.c.networks() == [] and eng.store.count(INTENT) == 0
    assert eng.log == []  # refused before the driver was asked


# ---------------------------------------------------------------- DNS records ----


def test_dns_records_follow_joins_and_leaves(eng):
    net, other = eng.net("a", "10.10.0.0/24"), eng.net("b", "10.20.0.0/24")
    web = eng.box("web", Attachment(net.name, aliases=("www",)))
    client, stranger = eng.box("client", net), eng.box("stranger", other)
    idx = eng.names.index
    assert idx.lookup(client.id, "web") == ["10.10.0.2"] and idx.lookup(client.id, "www") == ["10.10.0.2"]
    assert idx.lookup(stranger.id, "web") is None  # not on its network
    eng.c.connect("b", web.id)
    assert idx.lookup(stranger.id, "web") == ["10.20.0.3"]
    eng.c.disconnect("a", web.id)
    assert idx.lookup(client.id, "www") is None and idx.lookup(stranger.id, "web") == ["10.20.0.3"]
    eng.c.teardown_sandbox(web.id)
    assert idx.lookup(stranger.id, "web") is None
    joined = [e for e in eng.log if e[0] == "endpoint_joined" and e[2] == "web"]
    left = [e for e in eng.log if e[0] == "endpoint_left" and e[2] == "web"]
    assert len(joined) == len(left) == 2


def test_a_failed_join_publishes_no_record(eng):
    net = eng.net("a", "10.10.0.0/24")
    eng.driver.fail = {"join"}
    with pytest.raises(KernelError):
        eng.box("web", net)
    assert len(eng.names.index) == 0 and not [e for e in eng.log if e[0] == "endpoint_joined"]


# ---------------------------------------------------------------- reconcile ----


def test_reconcile_removes_orphans_of_this_engine_only(eng):
    net = eng.net("a", "10.10.0.0/24")
    sb = eng.box("c1", net)
    eng.kernel.add_link("orphan", alias=names.link_alias(eng.c.tag, "f" * 64))
    eng.kernel.add_link("foreign", alias=names.link_alias("other", "f" * 64))
    stray = eng.kernel.create_netns(f"nc-{eng.c.tag}-{'e' * 12}")
    eng.c.reconcile()
    assert eng.kernel.link(None, "orphan") is None and eng.kernel.link(None, "foreign") is not None
    assert not eng.kernel.netns_exists(stray) and eng.kernel.netns_exists(sb.netns_path)


def test_a_sandbox_whose_netns_vanished_loses_its_endpoints_on_reconcile(eng):
    net = eng.net("a", "10.10.0.0/24")
    sb = eng.box("c1", net, ports=[WEB])
    eng.kernel.delete_netns(sb.netns_path)  # the container died, its netns with it
    eng.c.reconcile()
    assert eng.c.sandbox(sb.id) is None and eng.store.count(ENDPOINT) == 0
    assert eng.firewall.published == {} and eng.c.ports.held() == 0
    assert eng.eps(eng.box("c2", Attachment(net.name, ip="10.10.0.2")))["a"].ip == "10.10.0.2"
