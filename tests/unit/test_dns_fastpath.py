"""The fast path for plain A queries (netcore/dns/fastpath.py) answers exactly as the full path."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import pytest

from netcore.dns.fastpath import answer_a
from netcore.dns.query import TTL, handle
from netcore.dns.records import NameIndex
from netcore.models import Endpoint, Network, Sandbox

NET = Network(id="n" * 64, name="web", driver="bridge", subnet="10.9.0.0/24")


@pytest.fixture
def index() -> NameIndex:
    idx = NameIndex()
    for i, (name, alias) in enumerate([("api", "svc"), ("db", "svc")], start=2):
        sb = Sandbox(id=f"{i:064x}", netns_path=f"/run/netns/x{i}", name=name)
        idx.add(NET, Endpoint(id=f"e{i}", network_id=NET.id, name=name, address=f"10.9.0.{i}/24", aliases=[alias]), sb)
    return idx


def both(index: NameIndex, query: dns.message.Message) -> tuple[bytes | None, dns.message.Message]:
    sid = f"{2:064x}"
    fast = answer_a(query.to_wire(), lambda name: index.lookup(sid, name), TTL)
    slow = handle(index, sid, query)
    return fast, slow


@pytest.mark.parametrize("name", ["db", "DB", "svc", "api.web", "Db.Web."])
def test_same_answer_as_the_full_path(index, name):
    query = dns.message.make_query(name, "A", use_edns=False)
    fast, slow = both(index, query)
    assert fast is not None
    got = dns.message.from_wire(fast)
    assert got.id == query.id and got.rcode() == slow.rcode() == dns.rcode.NOERROR
    assert got.flags == slow.flags  # QR, AA, RD as asked, RA
    assert got.question[0].name.to_text() == query.question[0].name.to_text()  # case kept (0x20)
    assert sorted(got.answer[0]) == sorted(slow.answer[0]) and got.answer[0].ttl == slow.answer[0].ttl == TTL


@pytest.mark.parametrize(
    "query",
    [
        dns.message.make_query("db", "AAAA", use_edns=False),  # another type
        dns.message.make_query("db", "A", use_edns=True),  # EDNS: the full path handles the OPT record
        dns.message.make_query("nosuch.example", "A", use_edns=False),  # unknown: forwarded
        dns.message.make_query("2.0.9.10.in-addr.arpa", "A", use_edns=False),
    ],
)
def test_everything_else_takes_the_full_path(index, query):
    fast, _ = both(index, query)
    assert fast is None


@pytest.mark.parametrize("wire", [b"", b"\x00" * 12, b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x00\x00\x01\x00\x01", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"])
def test_malformed_or_responses_are_left_alone(index, wire):
    assert answer_a(wire, lambda name: index.lookup(f"{2:064x}", name), TTL) is None
