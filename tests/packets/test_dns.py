"""The embedded DNS on 127.0.0.11, asked from inside real sandboxes.

Every controller here has ``EmbeddedDns`` registered with a resolv.conf of its
own whose only nameserver is an address on the test's ``main`` network (a fake
upstream answers there in the tests that need one): no packet ever goes to a
real resolver. Queries are built and parsed with dnspython, from sockets opened
inside the querying sandbox's netns.
"""

from __future__ import annotations

import ipaddress
import secrets
import selectors
import json
import socket
import subprocess
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest
from pktlab import IP, Lab
from scapy.all import DNS, UDP

from netcore.controller import on_host
from netcore.dns import EmbeddedDns
from netcore.models import Attachment, Endpoint, Network, Sandbox
from netcore.osl import netns

pytestmark = pytest.mark.root

CLIENT_TIMEOUT = 5.0  # well past the server's ~2 s forwarding deadline: a timeout here is a failure
FAKE_ADDRESS = "192.0.2.7"  # what the fake upstream answers for the names it knows


# ================================================================ helpers ======


@dataclass
class Box:
    sandbox: Sandbox
    endpoints: list[Endpoint]

    @property
    def id(self) -> str:
        return self.sandbox.id

    @property
    def path(self) -> str:
        return self.sandbox.netns_path

    @property
    def ip(self) -> str:
        return self.endpoints[0].ip

    def ip_on(self, net: Network) -> str:
        return next(e.ip for e in self.endpoints if e.network_id == net.id)


def ask(box: Box, name: str, rdtype: str = "A", tcp: bool = False, query: dns.message.Message | None = None) -> dns.message.Message:
    """Ask 127.0.0.11 from inside ``box``'s netns, as a process in the container would."""
    q = query or dns.message.make_query(name, rdtype)
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with netns.entered(box.path):
        sock = socket.socket(socket.AF_INET, kind)
    with sock:
        sock.settimeout(CLIENT_TIMEOUT)
        sock.connect(("127.0.0.11", 53))  # like glibc: a connected UDP socket sees ICMP errors
        if tcp:
            return dns.query.tcp(q, "127.0.0.11", timeout=CLIENT_TIMEOUT, sock=sock)
        sock.setblocking(False)  # dnspython waits with its own timeout
        return dns.query.udp(q, "127.0.0.11", timeout=CLIENT_TIMEOUT, sock=sock)


def addresses(response: dns.message.Message) -> list[str]:
    return sorted(rd.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


def resolves(box: Box, name: str) -> list[str]:
    """The A addresses of ``name`` seen from ``box``; [] for NXDOMAIN, anything else fails."""
    r = ask(box, name)
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN), (name, dns.rcode.to_text(r.rcode()))
    if r.rcode() == dns.rcode.NXDOMAIN:
        assert not r.answer
    return addresses(r)


@dataclass
class FakeUpstream:
    """A resolver inside a sandbox: answers ``FAKE_ADDRESS`` for its names, NXDOMAIN otherwise.

    Its UDP and TCP sockets are opened inside the sandbox's netns on ``ip:53``; it
    records (source ip, name, transport) of every query it gets.
    """

    box: Box
    names: set[str]
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        with netns.entered(self.box.path):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.udp.bind((self.box.ip, 53))
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.box.ip, 53))
        self.tcp.listen(8)
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _answer(self, wire: bytes, src: str, transport: str) -> bytes:
        q = dns.message.from_wire(wire)
        name = q.question[0].name.to_text(omit_final_dot=True).lower()
        self.seen.append((src, name, transport))
        r = dns.message.make_response(q)
        if name in self.names:
            r.answer.append(dns.rrset.from_text(q.question[0].name, 30, "IN", "A", FAKE_ADDRESS))
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r.to_wire()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.udp, selectors.EVENT_READ)
        sel.register(self.tcp, selectors.EVENT_READ)
        sel.register(self._stop_r, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                if key.fileobj is self._stop_r:
                    sel.close()
                    return
                if key.fileobj is self.udp:
                    wire, addr = self.udp.recvfrom(65535)
                    self.udp.sendto(self._answer(wire, addr[0], "udp"), addr)
                else:
                    conn, addr = self.tcp.accept()
                    with conn:
                        conn.settimeout(2)
                        (size,) = struct.unpack("!H", conn.recv(2))
                        wire = b""
                        while len(wire) < size:
                            wire += conn.recv(size - len(wire))
                        out = self._answer(wire, addr[0], "tcp")
                        conn.sendall(struct.pack("!H", len(out)) + out)

    def close(self) -> None:
        self._stop_w.send(b"x")
        self._thread.join(timeout=5)
        for s in (self.udp, self.tcp, self._stop_r, self._stop_w):
            s.close()


class DnsLab:
    """A controller with the embedded DNS, its networks, sandboxes and fake upstreams."""

    def __init__(self, root: str, resolv_conf: str, unique: Any, main_subnet: str) -> None:
        self.root, self.resolv_conf, self.unique = root, resolv_conf, unique
        self.main_subnet = main_subnet
        self.upstreams: list[FakeUpstream] = []
        self._n = 0
        self.start()
        # the host resolver of this engine lives on ``main``: never a real address
        self.main = self.network(subnet=main_subnet)

    def start(self) -> None:
        self.dns = EmbeddedDns(resolv_conf=self.resolv_conf)
        self.c = on_host(self.root, plugins=[("dns", self.dns)], default_driver="bridge")
        self.c.start()

    def _name(self) -> str:
        self._n += 1
        return f"d{self.unique}-{self._n}"

    def network(self, subnet: str | None = None, **kw: Any) -> Network:
        return self.c.create_network(self._name(), subnet=subnet or self.unique.subnet(), **kw)

    def box(self, *nets: Network, name: str | None = None, aliases: tuple[str, ...] = (), ip: str | None = None, **kw: Any) -> Box:
        atts = [Attachment(n.name, aliases=aliases, ip=ip if i == 0 else None) for i, n in enumerate(nets)]
        sb = self.c.setup_sandbox(secrets.token_hex(32), name or self._name(), atts, **kw)
        return Box(sb, self.c.sandbox_endpoints(sb))

    def refresh(self, box: Box) -> Box:
        sb = self.c.sandbox(box.id)
        return Box(sb, self.c.sandbox_endpoints(sb))

    def upstream(self, box: Box, names: set[str]) -> FakeUpstream:
        up = FakeUpstream(box, {n.lower() for n in names})
        self.upstreams.append(up)
        return up

    def close(self) -> None:
        for up in self.upstreams:
            up.close()
        try:
            self.c.reset()
        finally:
            self.c.close()


@pytest.fixture
def dl(engine_root: str, tmp_path: Any, unique: Any) -> Iterator[DnsLab]:
    subnet = unique.subnet()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"# test resolv.conf\nnameserver {host_resolver(subnet)}\noptions ndots:0\n")
    lab = DnsLab(engine_root, str(resolv), unique, subnet)
    try:
        yield lab
    finally:
        lab.close()


def host_resolver(subnet: str) -> str:
    """The address the engine's resolv.conf names: .53 of the ``main`` network."""
    return str(ipaddress.ip_network(subnet).network_address + 53)


def reverse(ip: str) -> str:
    return dns.reversename.from_address(ip).to_text()


# ================================================================ local names ==


def test_every_name_of_a_container_resolves_on_its_network(dl):
    net = dl.main
    a = dl.box(net, aliases=("web", "Api.Internal"), hostname="a-host")
    b = dl.box(net)
    name = a.sandbox.name

    for qname in (name, name.upper(), "web", "WEB", "api.internal", "a-host", a.id[:12], f"{name}.{net.name}", f"web.{net.name.upper()}"):
        r = ask(b, qname)
        assert r.rcode() == dns.rcode.NOERROR, qname
        assert r.flags & dns.flags.QR and r.flags & dns.flags.AA, qname
        (rrset,) = r.answer
        assert rrset.name.to_text() == qname + ".", "the answer must echo the question's spelling"
        assert rrset.ttl == 600
        assert [rd.address for rd in rrset] == [a.ip], qname
    assert resolves(a, b.sandbox.name) == [b.ip]
    assert resolves(a, name) == [a.ip], "a container resolves its own name"
    tcp = ask(b, "web", tcp=True)
    assert tcp.rcode() == dns.rcode.NOERROR and addresses(tcp) == [a.ip]
    assert resolves(b, "nosuch") == []
    assert resolves(b, f"{b.id[:11]}") == [], "only the 12-character short id is a name"


def test_names_do_not_cross_networks_until_connect(dl):
    n1, n2 = dl.main, dl.network()
    a = dl.box(n1, aliases=("web",))
    c = dl.box(n2)

    for qname in (a.sandbox.name, "web", a.id[:12]):
        r = ask(c, qname)
        assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer, qname
    assert resolves(a, c.sandbox.name) == []

    dl.c.connect(n1.name, c.id)
    assert resolves(c, "web") == [a.ip]
    assert resolves(a, c.sandbox.name) == [dl.refresh(c).ip_on(n1)], "a sees c by its new address on n1"


def test_disconnect_and_teardown_remove_records_at_once(dl):
    net = dl.main
    a, b = dl.box(net, aliases=("web",)), dl.box(net)
    x = dl.box(net, name=f"x{dl.unique}")
    assert resolves(b, "web") == [a.ip] and resolves(b, x.sandbox.name) == [x.ip]
    assert dl.dns.sockets(a.id) == 2

    dl.c.disconnect(net.name, a.id)
    assert resolves(b, "web") == [] and resolves(b, a.sandbox.name) == []
    assert dl.dns.sockets(a.id) == 0, "a's last resolution-enabled endpoint left: its sockets go"
    with pytest.raises(ConnectionRefusedError):  # nothing listens on 127.0.0.11 in a any more
        ask(a, "web")

    dl.c.teardown_sandbox(x.id)
    assert resolves(b, x.sandbox.name) == []
    assert dl.dns.sockets(x.id) == 0
    assert resolves(b, b.sandbox.name) == [b.ip]


def test_nothing_is_left_of_removed_containers(dl):
    other = dl.network()
    boxes = [dl.box(dl.main, other, aliases=("svc",)) for _ in range(4)]
    keep = boxes[0]
    assert len(dl.dns.index) == 8
    for box in boxes[1:]:
        dl.c.teardown_sandbox(box.id)
    assert len(dl.dns.index) == 2, "keep's two endpoints are all that is indexed"
    assert dl.dns.index.sandboxes() == [keep.id]
    assert [dl.dns.sockets(b.id) for b in boxes] == [2, 0, 0, 0]
    assert resolves(keep, "svc") == [keep.ip_on(dl.main)]


def test_other_types_of_a_known_name_are_empty_noerror(dl):
    a = dl.box(dl.main, aliases=("web",))
    b = dl.box(dl.main)
    for rdtype in ("AAAA", "MX", "TXT", "SRV"):
        r = ask(b, "web", rdtype)
        assert r.rcode() == dns.rcode.NOERROR, rdtype
        assert r.answer == [], rdtype
    r = ask(b, "nosuch", "AAAA")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert addresses(ask(b, a.sandbox.name, "A")) == [a.ip]


def test_ptr_answers_the_container_name_on_shared_networks(dl):
    other = dl.network()
    a = dl.box(dl.main, aliases=("web",))
    b = dl.box(dl.main)
    u = dl.box(other)
    up = dl.upstream(u, set())
    c = dl.box(other, dns_servers=[u.ip])

    r = ask(b, reverse(a.ip), "PTR")
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.rdtype == dns.rdatatype.PTR and rrset.ttl == 600
    assert [rd.target.to_text() for rd in rrset] == [f"{a.sandbox.name}."]

    # c shares no network with a: not answered locally, so it goes to c's upstream
    r = ask(c, reverse(a.ip), "PTR")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    assert (c.ip, reverse(a.ip).rstrip(".").lower(), "udp") in up.seen


def test_the_first_shared_network_in_join_order_answers(dl):
    n1, n2 = dl.main, dl.network()
    x = dl.box(n1, n2, aliases=("svc",))
    q21 = dl.box(n2, n1)
    q12 = dl.box(n1, n2)
    assert resolves(q21, "svc") == [x.ip_on(n2)]
    assert resolves(q12, "svc") == [x.ip_on(n1)]
    assert resolves(q21, f"svc.{n1.name}") == [x.ip_on(n1)], "a qualified name picks its network"

    # a shared alias on one network answers with every holder
    y = dl.box(n1, aliases=("svc",))
    only1 = dl.box(n1)
    assert resolves(only1, "svc") == sorted([x.ip_on(n1), y.ip])


def test_predefined_networks_have_no_embedded_names(dl):
    pre = dl.network(predefined=True)
    p1 = dl.box(pre)
    p2 = dl.box(pre, dl.main)
    b = dl.box(dl.main)

    assert dl.dns.sockets(p1.id) == 0
    with pytest.raises(ConnectionRefusedError):  # no resolver at all in p1
        ask(p1, "anything")
    assert resolves(p2, p1.sandbox.name) == [], "p1 has no name on the predefined network"
    assert resolves(b, p2.sandbox.name) == [p2.ip_on(dl.main)]
    assert resolves(p2, b.sandbox.name) == [b.ip]


# ================================================================ forwarding ===


def test_other_names_are_forwarded_from_the_sandbox(dl):
    u = dl.box(dl.main, ip=host_resolver(dl.main_subnet))
    up = dl.upstream(u, {"known.example", "other.example"})
    q = dl.box(dl.main)  # no --dns: the engine's resolv.conf, which names u

    query = dns.message.make_query("known.example", "A")
    r = ask(q, "", query=query)
    assert r.id == query.id
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.ttl == 30 and [rd.address for rd in rrset] == [FAKE_ADDRESS], "the upstream's answer, unchanged"
    assert up.seen[-1] == (q.ip, "known.example", "udp"), "forwarded from inside the sandbox's netns"

    r = ask(q, "missing.example")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert up.seen[-1] == (q.ip, "missing.example", "udp")

    r = ask(q, "other.example", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and addresses(r) == [FAKE_ADDRESS]
    assert up.seen[-1] == (q.ip, "other.example", "tcp")


def test_sandbox_dns_servers_replace_the_hosts(dl):
    other = dl.network()
    u = dl.box(other)
    up = dl.upstream(u, {"known.example"})
    q = dl.box(other, dns_servers=[u.ip])
    assert addresses(ask(q, "known.example")) == [FAKE_ADDRESS]
    assert up.seen == [(q.ip, "known.example", "udp")]


def test_a_bare_unknown_name_is_never_forwarded(dl):
    u = dl.box(dl.main)
    up = dl.upstream(u, {"server", "known.example"})  # it would answer "server" if asked
    q = dl.box(dl.main, dns_servers=[u.ip])
    r = ask(q, "server")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    assert addresses(ask(q, "known.example")) == [FAKE_ADDRESS]
    assert [name for _, name, _ in up.seen] == ["known.example"]


def test_upstream_refusing_or_silent_gives_servfail(dl):
    dead = dl.box(dl.main)  # nothing listens on its port 53: ICMP port unreachable
    silent = str(ipaddress.ip_network(dl.main_subnet).network_address + 250)  # nobody has it: no answer at all
    q = dl.box(dl.main, dns_servers=[dead.ip])
    q2 = dl.box(dl.main, dns_servers=[silent])

    for box in (q, q2):
        r = ask(box, "known.example")  # a client timeout would raise dns.exception.Timeout
        assert r.rcode() == dns.rcode.SERVFAIL and not r.answer
        assert dl.dns.sockets(box.id) == 2, "the forwarding socket is gone, the listeners stay"
    r = ask(q, "known.example", tcp=True)
    assert r.rcode() == dns.rcode.SERVFAIL


def test_second_upstream_is_tried_when_the_first_refuses(dl):
    dead = dl.box(dl.main)
    u = dl.box(dl.main)
    up = dl.upstream(u, {"known.example"})
    q = dl.box(dl.main, dns_servers=[dead.ip, u.ip])
    assert addresses(ask(q, "known.example")) == [FAKE_ADDRESS]
    assert up.seen == [(q.ip, "known.example", "udp")]


def test_internal_networks_get_no_forwarding(dl):
    internal = dl.network(internal=True)
    u = dl.box(internal)
    up = dl.upstream(u, {"known.example"})
    q = dl.box(internal, dns_servers=[u.ip])

    r = ask(q, "known.example")
    assert r.rcode() == dns.rcode.SERVFAIL
    assert up.seen == [], "nothing may leave an internal-only container"
    assert resolves(q, u.sandbox.name) == [u.ip], "local names still work"

    dl.c.connect(dl.main.name, q.id)  # one non-internal network: forwarding again
    assert addresses(ask(q, "known.example")) == [FAKE_ADDRESS]


# ================================================================ lifecycle ====


def test_restart_rebuilds_names_from_endpoint_restored(dl):
    other = dl.network()
    a = dl.box(dl.main, other, aliases=("web",))
    b = dl.box(dl.main)
    c = dl.box(other)
    assert resolves(b, "web") == [a.ip_on(dl.main)]

    dl.c.close()  # the engine stops; the sandboxes stay
    with pytest.raises(ConnectionRefusedError):  # shutdown closed every socket
        ask(b, "web")

    dl.start()  # a new engine on the same root
    assert resolves(b, "web") == [a.ip_on(dl.main)]
    assert resolves(a, b.sandbox.name) == [b.ip]
    assert resolves(c, "web") == [a.ip_on(other)]
    assert resolves(c, b.sandbox.name) == [], "scoping survives the restart"


# ================================================================ on the wire ==


def test_query_and_answer_on_the_sandbox_loopback(dl):
    a = dl.box(dl.main, aliases=("web",))
    b = dl.box(dl.main)
    lab = Lab(dl.c, dl.unique)
    query = dns.message.make_query("web", "A")
    udp_port, tcp_port = redirect_ports(b)
    try:
        with lab.capture(b.path, "lo") as cap:
            r = ask(b, "", query=query)
            frames = cap.packets(lambda p: on_wire(p, udp_port, query.id, 1), first=True)
            asked = cap.packets(lambda p: on_wire(p, udp_port, query.id, 0), first=True)
    finally:
        lab.close()
    assert r.rcode() == dns.rcode.NOERROR

    # lo shows the query after the sandbox's nat table sent port 53 to the resolver's own
    # port, and the answer after conntrack rewrote its source back to 127.0.0.11:53
    assert udp_port != 53 and tcp_port != 53
    assert asked, cap.summary()
    qpkt = asked[0]
    assert qpkt[IP].dst == "127.0.0.11"
    assert qpkt[UDP].dport == udp_port
    assert DNS(bytes(qpkt[UDP].payload)).qd[0].qname == b"web."

    assert frames, cap.summary()
    ans = frames[0]
    assert ans[IP].src == "127.0.0.11" and ans[IP].dst == qpkt[IP].src
    assert ans[UDP].sport == 53 and ans[UDP].dport == qpkt[UDP].sport
    d = DNS(bytes(ans[UDP].payload))
    assert d.id == query.id
    assert d.qr == 1 and d.rcode == 0 and d.aa == 1
    assert d.qd[0].qname == b"web." and d.qd[0].qtype == 1
    assert d.ancount == 1
    rr = d.an[0]
    assert rr.rrname == b"web." and rr.type == 1 and rr.rclass == 1
    assert rr.rdata == a.ip
    assert rr.ttl == 600


def on_wire(p: Any, port: int, ident: int, qr: int) -> bool:
    """A DNS message to or from the resolver's real port (scapy dissects DNS on port 53 only)."""
    if UDP not in p or not {port, 53} & {p[UDP].sport, p[UDP].dport}:
        return False
    d = DNS(bytes(p[UDP].payload))
    return d.id == ident and d.qr == qr


def redirect_ports(box: Box) -> tuple[int, int]:
    """The resolver's UDP and TCP ports, read off the DNAT rules in the box's netns."""
    out = subprocess.run(["nsenter", f"--net={box.path}", "nft", "-j", "list", "table", "inet", "netcore-dns"],
                         capture_output=True, text=True, check=True).stdout
    ports = {}
    for obj in json.loads(out)["nftables"]:
        r = obj.get("rule")
        if r:
            proto = next(e["match"]["left"]["payload"]["protocol"] for e in r["expr"] if "match" in e and e["match"]["right"] == 53)
            ports[proto] = next(e["dnat"]["port"] for e in r["expr"] if "dnat" in e)
    return ports["udp"], ports["tcp"]


def test_port_53_stays_free_for_the_containers_own_dns_server(dl):
    a = dl.box(dl.main, aliases=("web",))
    b = dl.box(dl.main)
    with netns.entered(b.path):
        own_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        own_tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with own_udp, own_tcp:
        own_udp.bind(("0.0.0.0", 53))  # a container's dnsmasq or CoreDNS
        own_tcp.bind(("0.0.0.0", 53))
        own_tcp.listen()
        assert resolves(b, "web") == [a.ip]  # 127.0.0.11:53 still reaches the embedded DNS
        assert addresses(ask(b, "web", tcp=True)) == [a.ip]
