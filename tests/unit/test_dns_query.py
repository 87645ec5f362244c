"""Answering one query from the index (netcore/dns/query.py), with dnspython messages."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest

from netcore.dns.forward import Upstream
from netcore.dns.query import TTL, Forward, encode, handle
from netcore.dns.records import NameIndex
from netcore.models import Endpoint, Network, Sandbox

HOST = ("10.255.0.1", "127.0.0.53", "10.255.0.2", "10.255.0.3")


def net(name: str, internal: bool = False) -> Network:
    return Network(id=f"id-{name}", name=name, driver="bridge", internal=internal)


@pytest.fixture
def index() -> NameIndex:
    """alpha (alias web) and beta on front; gamma on back, with its own --dns."""
    idx = NameIndex()
    for name, network, ip, aliases, servers in (
        ("alpha", net("front"), "10.0.0.2", ["web"], []),
        ("beta", net("front"), "10.0.0.3", [], []),
        ("gamma", net("back", internal=False), "10.1.0.2", [], ["10.9.0.53"]),
        ("delta", net("vault", internal=True), "10.2.0.2", [], ["10.2.0.53"]),
    ):
        sb = Sandbox(id=name * 8, netns_path=f"/run/netns/x-{name}", name=name, dns_servers=servers)
        ep = Endpoint(id=f"ep-{name}", network_id=network.id, name=name, address=f"{ip}/24", aliases=aliases)
        sb.endpoints.append(ep.id)
        idx.add(network, ep, sb)
    return idx


def ask(index: NameIndex, who: str, name: str, rdtype: str = "A", host: tuple[str, ...] = HOST):
    query = dns.message.make_query(name, rdtype)
    return query, handle(index, who * 8, query, host)


def test_a_record_of_a_local_name(index):
    query, r = ask(index, "beta", "Web")
    assert isinstance(r, dns.message.Message)
    assert r.id == query.id and r.flags & dns.flags.QR and r.flags & dns.flags.AA and r.flags & dns.flags.RA
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.name == query.question[0].name and rrset.name.to_text() == "Web."
    assert rrset.rdtype == dns.rdatatype.A and rrset.ttl == TTL == 600
    assert [rd.address for rd in rrset] == ["10.0.0.2"]


@pytest.mark.parametrize("rdtype", ["AAAA", "MX", "TXT", "SRV", "CNAME"])
def test_other_types_of_a_known_name_are_noerror_and_empty(index, rdtype):
    _, r = ask(index, "beta", "alpha", rdtype)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer == []


def test_ptr_of_an_address_on_a_shared_network(index):
    rev = dns.reversename.from_address("10.0.0.2").to_text()
    _, r = ask(index, "beta", rev, "PTR")
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.ttl == TTL and [rd.target.to_text() for rd in rrset] == ["alpha."]
    _, r = ask(index, "beta", rev, "A")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []


def test_ptr_of_an_address_on_another_network_is_forwarded(index):
    rev = dns.reversename.from_address("10.0.0.2").to_text()
    _, r = ask(index, "gamma", rev, "PTR")
    assert r == Forward((Upstream("10.9.0.53"),), "/run/netns/x-gamma")


def test_a_bare_unknown_name_is_nxdomain_and_never_forwarded(index):
    for who, name in (("beta", "nosuch"), ("gamma", "alpha"), ("gamma", "web")):
        _, r = ask(index, who, name)
        assert isinstance(r, dns.message.Message), (who, name)
        assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer, (who, name)


def test_other_names_go_to_the_host_resolvers_three_at_most_loopback_from_the_host(index):
    _, r = ask(index, "beta", "example.com")
    assert r == Forward(
        (Upstream("10.255.0.1"), Upstream("127.0.0.53", from_host=True), Upstream("10.255.0.2")),
        "/run/netns/x-beta",
    )


def test_the_sandbox_dns_servers_replace_the_hosts(index):
    _, r = ask(index, "gamma", "example.com")
    assert r == Forward((Upstream("10.9.0.53"),), "/run/netns/x-gamma")
    _, r = ask(index, "gamma", "alpha.front")
    assert isinstance(r, Forward), "a network gamma is not on qualifies nothing for gamma"


def test_internal_only_sandboxes_and_no_upstreams_give_servfail(index):
    _, r = ask(index, "delta", "example.com")
    assert isinstance(r, dns.message.Message) and r.rcode() == dns.rcode.SERVFAIL
    _, r = ask(index, "beta", "example.com", host=())
    assert isinstance(r, dns.message.Message) and r.rcode() == dns.rcode.SERVFAIL


def test_unknown_sandbox_wrong_opcode_and_question_count(index):
    query = dns.message.make_query("alpha", "A")
    assert handle(index, "nobody" * 8, query, HOST).rcode() == dns.rcode.REFUSED
    notify = dns.message.make_query("alpha", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert handle(index, "beta" * 8, notify, HOST).rcode() == dns.rcode.NOTIMP
    empty = dns.message.Message()
    assert handle(index, "beta" * 8, empty, HOST).rcode() == dns.rcode.FORMERR


def test_udp_answers_are_truncated_to_the_client_limit():
    idx = NameIndex()
    n = net("big")
    for i in range(60):
        sb = Sandbox(id=f"{i:064x}", netns_path="/x", name=f"c{i}")
        ep = Endpoint(id=f"e{i}", network_id=n.id, name=f"c{i}", address=f"10.3.0.{i + 2}/24", aliases=["many"])
        sb.endpoints.append(ep.id)
        idx.add(n, ep, sb)
    query = dns.message.make_query("many", "A")
    r = handle(idx, f"{0:064x}", query)
    assert len(r.answer[0]) == 60
    small = dns.message.from_wire(encode(r, query, tcp=False))
    assert small.flags & dns.flags.TC
    assert len(encode(r, query, tcp=False)) <= 512
    whole = dns.message.from_wire(encode(r, query, tcp=True))
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == 60
    edns = dns.message.make_query("many", "A", use_edns=0, payload=4096)
    assert len(dns.message.from_wire(encode(handle(idx, f"{0:064x}", edns), edns, tcp=False)).answer[0]) == 60
