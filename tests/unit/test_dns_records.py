"""The embedded DNS's name index (netcore/dns/records.py): names, scoping, order, forgetting."""

from __future__ import annotations

import pytest

from netcore.dns.records import NameIndex, endpoint_names, resolution_enabled
from netcore.models import Endpoint, Network, Sandbox
from netcore.names import GATEWAY_NETWORK


def net(name: str, internal: bool = False, predefined: bool = False) -> Network:
    return Network(id=f"id-{name}", name=name, driver="bridge", internal=internal, predefined=predefined)


class World:
    """Sandboxes joining networks the way the controller tells observers about it."""

    def __init__(self) -> None:
        self.index = NameIndex()
        self.sandboxes: dict[str, Sandbox] = {}
        self._ip = 1

    def join(self, sandbox_name: str, network: Network, aliases: tuple[str, ...] = (), hostname: str = "", ip: str | None = None) -> Endpoint:
        sb = self.sandboxes.get(sandbox_name)
        if sb is None:
            sid = (sandbox_name.encode().hex() + "0" * 64)[:64]
            sb = self.sandboxes[sandbox_name] = Sandbox(id=sid, netns_path=f"/run/netns/x-{sandbox_name}", name=sandbox_name, hostname=hostname)
        self._ip += 1
        ep = Endpoint(
            id=f"ep-{sandbox_name}-{network.name}",
            network_id=network.id,
            name=sandbox_name,
            sandbox_id=sb.id,
            address=f"{ip or f'10.0.0.{self._ip}'}/24",
            aliases=list(aliases),
        )
        sb.endpoints.append(ep.id)
        self.index.add(network, ep, sb)
        return ep

    def leave(self, sandbox_name: str, network: Network) -> None:
        sb = self.sandboxes[sandbox_name]
        eid = f"ep-{sandbox_name}-{network.name}"
        sb.endpoints.remove(eid)
        self.index.remove(eid)

    def sid(self, name: str) -> str:
        return self.sandboxes[name].id

    def lookup(self, who: str, qname: str) -> list[str] | None:
        return self.index.lookup(self.sid(who), qname)


def test_resolution_is_off_on_predefined_networks_the_gateway_bridge_and_in_the_host_namespace():
    sb = Sandbox(id="a" * 64, netns_path="/run/netns/x")
    assert resolution_enabled(net("user"), sb)
    assert not resolution_enabled(net("bridge", predefined=True), sb)
    assert not resolution_enabled(net(GATEWAY_NETWORK), sb)  # every overlay container is on it
    assert not resolution_enabled(net("user"), Sandbox(id="b" * 64, netns_path=None))


def test_an_endpoint_is_named_by_container_aliases_hostname_and_short_id():
    sb = Sandbox(id="0123456789abcdef" * 4, netns_path="/x", name="Web", hostname="web.")
    ep = Endpoint(id="e", network_id="n", name="Web", aliases=["API", "api", " cache "])
    assert endpoint_names(ep, sb) == ("web", "api", "cache", "0123456789ab")


def test_every_name_resolves_case_insensitively_to_the_endpoint_address():
    w = World()
    n = net("front")
    a = w.join("alpha", n, aliases=("Web",), hostname="alpha-host")
    w.join("beta", n)
    for qname in ("alpha", "ALPHA", "web", "Web.", "alpha-host", w.sid("alpha")[:12], "alpha.front", "WEB.FRONT"):
        assert w.lookup("beta", qname) == [a.ip], qname
    assert w.lookup("beta", "gamma") is None
    assert w.lookup("beta", "alpha.back") is None, "qualified by a network nobody is on"
    assert w.lookup("beta", w.sid("alpha")[:11]) is None


def test_a_sandbox_sees_only_names_on_its_own_networks():
    w = World()
    front, back = net("front"), net("back")
    w.join("alpha", front)
    w.join("beta", back)
    assert w.lookup("beta", "alpha") is None
    assert w.lookup("beta", "alpha.front") is None
    assert w.lookup("alpha", "beta") is None
    ep = w.join("beta", front)
    assert w.lookup("alpha", "beta") == [ep.ip], "beta's address on the network alpha shares"


def test_the_first_network_in_join_order_answers_and_a_shared_alias_gives_every_holder():
    w = World()
    n1, n2 = net("one"), net("two")
    x1 = w.join("x", n1, aliases=("svc",), ip="10.1.0.5")
    x2 = w.join("x", n2, aliases=("svc",), ip="10.2.0.5")
    w.join("q21", n2)
    w.join("q21", n1)
    w.join("q12", n1)
    w.join("q12", n2)
    assert w.lookup("q21", "svc") == [x2.ip]
    assert w.lookup("q12", "svc") == [x1.ip]
    assert w.lookup("q21", "svc.one") == [x1.ip]
    y = w.join("y", n1, aliases=("svc",), ip="10.1.0.6")
    assert w.lookup("q12", "svc") == [x1.ip, y.ip]


def test_network_names_with_dots_qualify_names_too():
    w = World()
    n = net("corp.lan")
    a = w.join("alpha", n, aliases=("db.primary",))
    w.join("beta", n)
    assert w.lookup("beta", "alpha.corp.lan") == [a.ip]
    assert w.lookup("beta", "db.primary.corp.lan") == [a.ip]
    assert w.lookup("beta", "db.primary") == [a.ip]


def test_reverse_answers_the_container_name_on_shared_networks_only():
    w = World()
    front, back = net("front"), net("back")
    a = w.join("alpha", front, aliases=("web",))
    w.join("beta", front)
    w.join("gamma", back)
    assert w.index.reverse(w.sid("beta"), a.ip) == "alpha"
    assert w.index.reverse(w.sid("gamma"), a.ip) is None
    assert w.index.reverse(w.sid("beta"), "10.9.9.9") is None


def test_leaving_removes_every_record_and_all_memory_of_it():
    w = World()
    front, back = net("front"), net("back")
    w.join("alpha", front, aliases=("web",))
    w.join("alpha", back)
    w.join("beta", front)
    w.leave("alpha", front)
    for qname in ("alpha", "web", "alpha.front"):
        assert w.lookup("beta", qname) is None, qname
    assert w.index.sandbox(w.sid("alpha")) is not None, "alpha is still on back"
    w.leave("alpha", back)
    w.leave("beta", front)
    assert len(w.index) == 0
    assert w.index.sandboxes() == []
    assert w.index._nets == {}, "no per-network entry outlives its last record"


def test_adding_the_same_endpoint_again_replaces_it():
    w = World()
    n = net("front")
    sb = Sandbox(id="c" * 64, netns_path="/x", name="alpha")
    ep = Endpoint(id="e1", network_id=n.id, name="alpha", address="10.0.0.9/24")
    sb.endpoints.append("e1")
    w.index.add(n, ep, sb)
    w.index.add(n, ep, sb)
    assert len(w.index) == 1
    assert w.index.lookup(sb.id, "alpha") == ["10.0.0.9"]
    assert w.index.sandbox(sb.id).endpoint_ids == ["e1"]


def test_internal_only_is_true_when_every_resolving_network_is_internal():
    w = World()
    inner, outer = net("inner", internal=True), net("outer")
    w.join("alpha", inner)
    assert w.index.internal_only(w.sid("alpha"))
    w.join("alpha", outer)
    assert not w.index.internal_only(w.sid("alpha"))


def test_dropping_a_network_forgets_its_records():
    w = World()
    front = net("front")
    w.join("alpha", front)
    w.join("beta", front)
    dropped = w.index.drop_network(front.id)
    assert sorted(r.names[0] for r in dropped) == ["alpha", "beta"]
    assert len(w.index) == 0 and w.index.sandboxes() == []


def test_an_endpoint_without_address_is_refused():
    with pytest.raises(ValueError):
        NameIndex().add(net("n"), Endpoint(id="e", network_id="id-n", name="a"), Sandbox(id="d" * 64, netns_path="/x"))
