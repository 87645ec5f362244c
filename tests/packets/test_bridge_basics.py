"""One bridge network, on the wire: ARP for the gateway, ICMP and TCP between containers."""

from __future__ import annotations

import secrets
import threading

import pytest
from pktlab import ARP, BROADCAST, ICMP, IP, TCP, Ether, link_mac

from netcore import names

pytestmark = pytest.mark.root


def test_gateway_answers_arp_with_bridge_mac(lab):
    net = lab.network()
    a = lab.box(net)
    br_mac = lab.bridge_mac(net)  # read after the join: the bridge's MAC as it is now

    ans = lab.sr1(a, Ether(src=a.mac, dst=BROADCAST) / ARP(op=1, hwsrc=a.mac, psrc=a.ip, pdst=net.gateway))

    assert ans is not None, f"no ARP reply for gateway {net.gateway}"
    arp = ans[ARP]
    assert arp.op == 2
    assert arp.psrc == net.gateway
    assert arp.hwsrc == br_mac, f"gateway answered with {arp.hwsrc}, bridge has {br_mac}"
    assert arp.pdst == a.ip and arp.hwdst == a.mac
    assert ans[Ether].src == br_mac and ans[Ether].dst == a.mac

    # nobody answers for an unused address of the subnet (the reply above is not just any proxy)
    unused = net.subnet.rsplit(".", 1)[0] + ".250"
    none = lab.sr1(a, Ether(src=a.mac, dst=BROADCAST) / ARP(op=1, hwsrc=a.mac, psrc=a.ip, pdst=unused), timeout=0.3)
    assert none is None, none.summary()


def test_gateway_mac_survives_container_leaving(lab):
    net = lab.network()
    before_join = lab.bridge_mac(net)
    a, b = lab.box(net), lab.box(net)

    def gateway_mac(box):
        ans = lab.sr1(box, Ether(src=box.mac, dst=BROADCAST) / ARP(op=1, hwsrc=box.mac, psrc=box.ip, pdst=net.gateway))
        assert ans is not None
        return ans[ARP].hwsrc

    cached = gateway_mac(a)
    assert cached == gateway_mac(b)
    # The container whose host-side veth carries the gateway's MAC (if any) leaves; the other
    # keeps the gateway MAC it learnt by ARP, as a real container's neighbour cache does.
    leaving = next((x for x in (a, b) if link_mac(x.veth) == cached), b)
    staying = a if leaving is b else b
    lab.c.teardown_sandbox(leaving.sandbox.id)

    ident = secrets.randbelow(0xFFFF)
    echo = Ether(src=staying.mac, dst=cached) / IP(src=staying.ip, dst=net.gateway) / ICMP(type=8, id=ident, seq=1)
    ans = lab.sr1(staying, echo)
    assert ans is not None, (
        f"the gateway no longer answers at {cached}, the MAC its containers learnt by ARP "
        f"(bridge MAC was {before_join} before any join, is {lab.bridge_mac(net)} now)"
    )


def test_icmp_echo_between_containers(lab):
    net = lab.network()
    a, b = lab.box(net), lab.box(net)
    assert a.mac == names.mac_from_ipv4(a.ip) and a.mac.startswith("02:42:")
    assert b.mac == names.mac_from_ipv4(b.ip)
    ident, payload = secrets.randbelow(0xFFFF), secrets.token_bytes(16)

    with lab.capture(b) as at_b:
        req = Ether(src=a.mac, dst=b.mac) / IP(src=a.ip, dst=b.ip) / ICMP(type=8, id=ident, seq=7) / payload
        rep = lab.sr1(a, req)
        seen = at_b.packets(lambda p: ICMP in p and p[ICMP].id == ident, timeout=0.3)

    assert rep is not None, "no echo reply"
    assert rep[ICMP].type == 0 and rep[ICMP].id == ident and rep[ICMP].seq == 7
    assert (rep[IP].src, rep[IP].dst) == (b.ip, a.ip)
    assert (rep[Ether].src, rep[Ether].dst) == (b.mac, a.mac)
    assert bytes(rep[ICMP].payload) == payload

    reqs = [p for p in seen if p[ICMP].type == 8]
    replies = [p for p in seen if p[ICMP].type == 0]
    assert len(reqs) == 1 and len(replies) == 1, [p.summary() for p in seen]
    assert (reqs[0][Ether].src, reqs[0][Ether].dst, reqs[0][IP].src, reqs[0][IP].dst) == (a.mac, b.mac, a.ip, b.ip)
    assert (replies[0][Ether].src, replies[0][Ether].dst) == (b.mac, a.mac)


def test_tcp_syn_gets_syn_ack_from_listener(lab, port):
    net = lab.network()
    a, b = lab.box(net), lab.box(net)
    lab.listen_tcp(b, port)
    sport = 40000 + secrets.randbelow(20000)
    seq = secrets.randbelow(2**32)

    with lab.capture(b) as at_b:
        syn = Ether(src=a.mac, dst=b.mac) / IP(src=a.ip, dst=b.ip) / TCP(sport=sport, dport=port, flags="S", seq=seq)
        ans = lab.sr1(a, syn)
        at_b_seen = at_b.packets(lambda p: TCP in p and p[TCP].sport == sport, timeout=0.2)

    assert ans is not None, "no answer to SYN"
    tcp = ans[TCP]
    assert str(tcp.flags) == "SA", f"expected SYN-ACK, got {tcp.flags}"
    assert (tcp.sport, tcp.dport, tcp.ack) == (port, sport, seq + 1)
    assert (ans[IP].src, ans[IP].dst, ans[Ether].src, ans[Ether].dst) == (b.ip, a.ip, b.mac, a.mac)
    assert any(str(p[TCP].flags) == "S" and p[IP].src == a.ip and p[Ether].src == a.mac for p in at_b_seen)

    # control: the SYN-ACK came from the listener, a closed port answers RST
    closed = port + 1 if port < 65535 else port - 1
    rst = lab.sr1(a, Ether(src=a.mac, dst=b.mac) / IP(src=a.ip, dst=b.ip) / TCP(sport=sport + 1, dport=closed, flags="S", seq=seq))
    assert rst is not None and "R" in str(rst[TCP].flags), rst


def test_tcp_connection_handshake_on_the_veth(lab, port):
    """A real kernel-to-kernel connection, watched on B's host-side veth: S, SA, A and the data."""
    net = lab.network()
    a, b = lab.box(net), lab.box(net)
    srv = lab.listen_tcp(b, port)
    got: list[bytes] = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            got.append(conn.recv(100))
            conn.sendall(b"pong")

    with lab.capture(None, b.veth) as on_veth:
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cli = lab.connect_tcp(a, b.ip, port)
        cli.sendall(b"ping")
        assert cli.recv(100) == b"pong"
        cli.close()
        t.join(2)
        seen = on_veth.packets(lambda p: TCP in p and port in (p[TCP].sport, p[TCP].dport), timeout=0.2)

    assert got == [b"ping"]
    flags = [(p[IP].src, str(p[TCP].flags)) for p in seen]
    assert flags[:3] == [(a.ip, "S"), (b.ip, "SA"), (a.ip, "A")], flags
    for p in seen:
        assert {p[IP].src, p[IP].dst} == {a.ip, b.ip}
        assert p[Ether].src == (a.mac if p[IP].src == a.ip else b.mac)
