"""Forwarding and the selector loop (netcore/dns/forward.py, server.py) over the host's loopback.

No root and no namespace: upstreams are fake resolvers on 127.0.0.1 ephemeral
ports (``Upstream(port=...)``), dialled from the test's own namespace. Waiting is
done on events, never by sleeping; no assertion is about time.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from netcore.dns.forward import Forwarder, Upstream, read_nameservers, upstreams_for
from netcore.dns.server import Loop, TcpListener, UdpListener, open_listeners


# ================================================================ resolv.conf ==


def test_read_nameservers_keeps_order_and_skips_junk(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(
        "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver   fe80::1%eth0\n"
        "nameserver not-an-ip\nnameserver 127.0.0.53\nnameserver 2001:db8::1\nnameserver 10.0.0.2\noptions edns0\n"
    )
    assert read_nameservers(str(path)) == ["10.0.0.1", "127.0.0.53", "2001:db8::1", "10.0.0.2"]
    assert read_nameservers(str(tmp_path / "missing")) == []


def test_upstreams_prefer_the_sandbox_and_stop_at_three():
    host = ["10.0.0.1", "127.0.0.53", "::1", "10.0.0.4"]
    assert upstreams_for([], host) == (Upstream("10.0.0.1"), Upstream("127.0.0.53", from_host=True), Upstream("::1", from_host=True))
    assert upstreams_for(["192.0.2.1", "bogus"], host) == (Upstream("192.0.2.1"),)
    assert upstreams_for([], []) == ()
    assert Upstream("2001:db8::1").family == socket.AF_INET6 and Upstream("10.0.0.1").family == socket.AF_INET


# ================================================================ fixtures =====


def _port_pair() -> tuple[socket.socket, socket.socket, int]:
    """A UDP and a TCP socket on the same free loopback port (a port free for one may be taken for the other)."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            tcp.close()
            udp.close()
            continue
        return udp, tcp, port
    raise RuntimeError("no loopback port free for both UDP and TCP")


class FakeResolver:
    """UDP and TCP on 127.0.0.1 (one port for both); ``behave(query) -> bytes | None`` (None: stay silent)."""

    def __init__(self, behave: Callable[[dns.message.Message], bytes | None]) -> None:
        self.behave = behave
        self.udp, self.tcp, self.port = _port_pair()
        self.tcp.listen(4)
        self.queries: list[dns.message.Message] = []
        self._threads = [threading.Thread(target=self._udp, daemon=True), threading.Thread(target=self._tcp, daemon=True)]
        for t in self._threads:
            t.start()

    def _udp(self) -> None:
        while True:
            try:
                wire, addr = self.udp.recvfrom(65535)
            except OSError:
                return
            if not wire:  # shut down by close()
                return
            q = dns.message.from_wire(wire)
            self.queries.append(q)
            out = self.behave(q)
            if out is not None:
                self.udp.sendto(out, addr)

    def _tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                (size,) = struct.unpack("!H", conn.recv(2))
                wire = b""
                while len(wire) < size:
                    wire += conn.recv(size - len(wire))
                q = dns.message.from_wire(wire)
                self.queries.append(q)
                out = self.behave(q)
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", port=self.port, from_host=True)

    def close(self) -> None:
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def answer(address: str) -> Callable[[dns.message.Message], bytes]:
    def behave(q: dns.message.Message) -> bytes:
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 42, "IN", "A", address))
        return r.to_wire()

    return behave


def rcode(code: dns.rcode.Rcode) -> Callable[[dns.message.Message], bytes]:
    def behave(q: dns.message.Message) -> bytes:
        r = dns.message.make_response(q)
        r.set_rcode(code)
        return r.to_wire()

    return behave


@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop()
    try:
        yield lp
    finally:
        lp.stop()


@pytest.fixture
def resolvers() -> Iterator[Callable[..., FakeResolver]]:
    made: list[FakeResolver] = []

    def make(behave: Callable[[dns.message.Message], bytes | None]) -> FakeResolver:
        made.append(FakeResolver(behave))
        return made[-1]

    yield make
    for r in made:
        r.close()


def refused_upstream() -> Upstream:
    """A loopback port with nobody on it: the kernel answers ICMP port unreachable."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return Upstream("127.0.0.1", port=port, from_host=True)


def forward(loop: Loop, fwd: Forwarder, upstreams: list[Upstream], name: str = "example.com", tcp: bool = False, owner: str = "sb"):
    """Start a forward on the loop's thread; returns (query, wait) where wait() gives the reply."""
    query = dns.message.make_query(name, "A")
    wire = query.to_wire()
    got: list[bytes] = []
    done = threading.Event()

    def reply(out: bytes) -> None:
        got.append(out)
        done.set()

    with loop.lock:
        fwd.start(query, wire, upstreams, None, owner, reply, tcp)

    def wait() -> dns.message.Message:
        assert done.wait(10), "no reply at all"
        return dns.message.from_wire(got[0])

    return query, wait


# ================================================================ forwarding ===


@pytest.mark.parametrize("tcp", [False, True])
def test_answer_is_relayed_with_the_client_id(loop, resolvers, tcp):
    up = resolvers(answer("192.0.2.9"))
    fwd = Forwarder(loop)
    query, wait = forward(loop, fwd, [up.upstream], tcp=tcp)
    r = wait()
    assert r.id == query.id
    assert up.queries[0].question == query.question
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.ttl == 42 and [rd.address for rd in rrset] == ["192.0.2.9"]
    assert fwd.pending == 0 and loop.count("sb") == 0, "the forwarding socket is closed"


def test_upstream_nxdomain_is_relayed(loop, resolvers):
    up = resolvers(rcode(dns.rcode.NXDOMAIN))
    query, wait = forward(loop, Forwarder(loop), [up.upstream])
    assert wait().rcode() == dns.rcode.NXDOMAIN


def test_refused_port_gives_servfail(loop):
    fwd = Forwarder(loop, deadline=30)  # a timeout could not produce the answer in time: ECONNREFUSED must
    query, wait = forward(loop, fwd, [refused_upstream()])
    r = wait()
    assert r.rcode() == dns.rcode.SERVFAIL and r.id == query.id
    assert fwd.pending == 0


def test_silent_upstream_gives_servfail_after_the_deadline(loop, resolvers):
    up = resolvers(lambda q: None)
    fwd = Forwarder(loop, deadline=0.3)
    _, wait = forward(loop, fwd, [up.upstream])
    assert wait().rcode() == dns.rcode.SERVFAIL
    assert len(up.queries) == 1
    assert fwd.pending == 0 and loop.count("sb") == 0


@pytest.mark.parametrize("first", ["refused", "servfail", "refused-rcode"])
def test_next_upstream_after_a_failure(loop, resolvers, first):
    good = resolvers(answer("192.0.2.10"))
    bad = {
        "refused": lambda: refused_upstream(),
        "servfail": lambda: resolvers(rcode(dns.rcode.SERVFAIL)).upstream,
        "refused-rcode": lambda: resolvers(rcode(dns.rcode.REFUSED)).upstream,
    }[first]()
    _, wait = forward(loop, Forwarder(loop, deadline=30), [bad, good.upstream])
    r = wait()
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.10"


def test_an_answer_to_another_question_is_ignored(loop, resolvers):
    def wrong(q: dns.message.Message) -> bytes:
        other = dns.message.make_query("evil.example", "A")
        other.id = q.id
        r = dns.message.make_response(other)
        r.answer.append(dns.rrset.from_text("evil.example.", 42, "IN", "A", "203.0.113.66"))
        return r.to_wire()

    up = resolvers(wrong)
    _, wait = forward(loop, Forwarder(loop, deadline=0.3), [up.upstream])
    r = wait()
    assert r.rcode() == dns.rcode.SERVFAIL and not r.answer


def test_too_many_pending_forwards_are_refused(loop, resolvers):
    up = resolvers(lambda q: None)
    fwd = Forwarder(loop, deadline=30, max_pending=1)
    forward(loop, fwd, [up.upstream])
    _, wait = forward(loop, fwd, [up.upstream])
    assert wait().rcode() == dns.rcode.REFUSED
    assert fwd.pending == 1


def test_closing_the_owner_cancels_its_forwards(loop, resolvers):
    up = resolvers(lambda q: None)
    fwd = Forwarder(loop, deadline=30)
    forward(loop, fwd, [up.upstream], owner="gone")
    forward(loop, fwd, [up.upstream], owner="stays")
    assert fwd.pending == 2 and loop.count("gone") == 1
    assert loop.close_owner("gone") == 1
    assert fwd.pending == 1 and loop.count("gone") == 0 and loop.count("stays") == 1


# ================================================================ listeners ====


def test_listeners_serve_udp_and_tcp_with_two_queries_in_one_segment(loop):
    udp, tcp = open_listeners(None, address="127.0.0.1", port=0)
    seen: list[tuple[str, bool]] = []

    def serve(owner: str, wire: bytes, reply: Callable[[bytes], None], is_tcp: bool) -> None:
        q = dns.message.from_wire(wire)
        seen.append((owner, is_tcp))
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 600, "IN", "A", "10.0.0.7"))
        reply(r.to_wire())

    port_udp, port_tcp = udp.getsockname()[1], tcp.getsockname()[1]
    loop.add(UdpListener(udp, "sb", serve))
    loop.add(TcpListener(tcp, "sb", serve, loop))

    q = dns.message.make_query("a.example", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.sendto(q.to_wire(), ("127.0.0.1", port_udp))
        r = dns.message.from_wire(c.recv(65535))
    assert r.id == q.id and r.answer[0][0].address == "10.0.0.7"

    q1, q2 = dns.message.make_query("b.example", "A"), dns.message.make_query("c.example", "A")
    w1, w2 = q1.to_wire(), q2.to_wire()
    with socket.create_connection(("127.0.0.1", port_tcp), timeout=5) as c:
        c.sendall(struct.pack("!H", len(w1)) + w1 + struct.pack("!H", len(w2)) + w2)
        buf = b""
        answers = []
        while len(answers) < 2:
            chunk = c.recv(65535)
            assert chunk, "connection closed early"
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                size = struct.unpack("!H", buf[:2])[0]
                answers.append(dns.message.from_wire(buf[2 : 2 + size]))
                buf = buf[2 + size :]
        assert loop.count("sb") == 3, "two listeners and the accepted connection"
        assert loop.close_owner("sb") == 3
        assert c.recv(1) == b"", "closing the owner closed the client's connection"
    assert [a.id for a in answers] == [q1.id, q2.id]
    assert seen == [("sb", False), ("sb", True), ("sb", True)]


def test_stop_closes_every_socket(loop):
    udp, tcp = open_listeners(None, address="127.0.0.1", port=0)
    loop.add(UdpListener(udp, "a", lambda *a: None))
    loop.add(TcpListener(tcp, "b", lambda *a: None, loop))
    loop.stop()
    assert udp.fileno() == -1 and tcp.fileno() == -1
    with pytest.raises(RuntimeError):
        loop.add(UdpListener(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), "c", lambda *a: None))


def test_loopback_upstreams_are_dialled_from_the_engine_namespace(loop, resolvers):
    """A sandbox netns that cannot be entered: only an upstream marked ``from_host`` is reachable."""
    up = resolvers(answer("192.0.2.11"))
    in_sandbox = Upstream("127.0.0.1", port=up.port, from_host=False)
    for upstream, expected in ((up.upstream, dns.rcode.NOERROR), (in_sandbox, dns.rcode.SERVFAIL)):
        query = dns.message.make_query("example.com", "A")
        got: list[bytes] = []
        done = threading.Event()
        with loop.lock:
            Forwarder(loop, deadline=30).start(
                query, query.to_wire(), [upstream], "/nonexistent/netns", "sb", lambda w: (got.append(w), done.set()), False
            )
        assert done.wait(10)
        assert dns.message.from_wire(got[0]).rcode() == expected, upstream
    assert len(up.queries) == 1, "the query meant for the sandbox's netns never left from the engine's"
