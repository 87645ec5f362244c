"""Isolation on the wire: between networks, and inside an icc=false network.

Each "never arrives" assertion comes with a positive control through the very same
capture, so a broken capture cannot make the test pass.
"""

from __future__ import annotations

import secrets

import pytest
from pktlab import ICMP, IP, TCP, Ether, Raw, token_filter

pytestmark = pytest.mark.root


def syn(src, dst_ip, dst_mac, sport, dport, token=b""):
    """A TCP SYN; a ``token`` payload identifies it even after NAT rewrote addresses or ports."""
    frame = Ether(src=src.mac, dst=dst_mac) / IP(src=src.ip, dst=dst_ip) / TCP(sport=sport, dport=dport, flags="S", seq=secrets.randbelow(2**32))
    return frame / Raw(token) if token else frame


def test_networks_are_isolated(lab, port):
    n1, n2 = lab.network(), lab.network()
    a1 = lab.box(n1)
    b2, c2 = lab.box(n2), lab.box(n2)
    gw1, gw2 = lab.bridge_mac(n1), lab.bridge_mac(n2)
    s_cross, s_back, s_same = (30000 + secrets.randbelow(30000) for _ in range(3))
    cross, back_token = secrets.token_bytes(12), secrets.token_bytes(12)

    # watched twice: inside b2 (eth0) and on b2's host-side veth
    with lab.capture(b2) as in_b2, lab.capture(None, b2.veth) as on_veth:
        # n1 -> n2 through n1's gateway: the host would route it, the firewall must drop it
        lab.send(a1, syn(a1, b2.ip, gw1, s_cross, port, cross), count=3)
        # control: the same SYN from c2 on b2's own network does arrive (directly and routed via gw2)
        lab.send(c2, syn(c2, b2.ip, b2.mac, s_same, port))
        lab.send(c2, syn(c2, b2.ip, gw2, s_same + 1, port))
        # matched by payload: a cross-network packet would arrive masqueraded to n2's gateway
        cross_in = in_b2.packets(token_filter(cross), timeout=0.5)  # everything sent has landed by now
        cross_veth = on_veth.packets(token_filter(cross), timeout=0.05)
        same_in = in_b2.packets(lambda p: TCP in p and p[TCP].sport in (s_same, s_same + 1) and p[TCP].flags == "S", timeout=0)
        same_veth = on_veth.packets(lambda p: TCP in p and p[TCP].sport == s_same and p[TCP].flags == "S", timeout=0)

    assert cross_in == [] and cross_veth == [], [p.summary() for p in cross_in + cross_veth]
    assert {p[TCP].sport for p in same_in} == {s_same, s_same + 1}, [p.summary() for p in same_in]
    assert same_veth and same_veth[0][IP].src == c2.ip

    # and the other way round: n2 -> n1 never reaches a1, while a peer on n1 does, through the same capture
    d1 = lab.box(n1)
    same_token = secrets.token_bytes(12)
    with lab.capture(a1) as in_a1:
        lab.send(b2, syn(b2, a1.ip, gw2, s_back, port, back_token), count=3)
        lab.send(b2, Ether(src=b2.mac, dst=gw2) / IP(src=b2.ip, dst=a1.ip) / ICMP(id=s_back & 0xFFFF) / back_token)
        lab.send(d1, syn(d1, a1.ip, gw1, s_back, port, same_token))  # control: routed through n1's own gateway
        back = in_a1.packets(lambda p: IP in p and (p[IP].src == b2.ip or token_filter(back_token)(p)), timeout=0.5)
        control = in_a1.packets(token_filter(same_token), timeout=0)
    assert back == [], [p.summary() for p in back]
    assert control and control[0][IP].src == d1.ip, in_a1.summary()

    # and a1 still reaches its own gateway (the drop above is isolation, not a dead network)
    ans = lab.sr1(a1, Ether(src=a1.mac, dst=gw1) / IP(src=a1.ip, dst=n1.gateway) / ICMP(id=s_back & 0xFFFF))
    assert ans is not None and ans[ICMP].type == 0


def test_icc_false_blocks_containers_but_not_the_gateway(lab, port):
    net = lab.network(options={"icc": "false"})
    a, b = lab.box(net), lab.box(net)
    gw = lab.bridge_mac(net)
    sport = 30000 + secrets.randbelow(30000)
    ident = secrets.randbelow(0xFFFF)
    token = secrets.token_bytes(12)

    with lab.capture(b) as in_b:
        # a -> b: bridged (b's MAC) and hairpinned through the gateway (the bridge's MAC)
        lab.send(a, syn(a, b.ip, b.mac, sport, port, token), count=2)
        lab.send(a, syn(a, b.ip, gw, sport, port, token), count=2)
        lab.send(a, Ether(src=a.mac, dst=b.mac) / IP(src=a.ip, dst=b.ip) / ICMP(id=ident, seq=1) / token)
        lab.send(a, Ether(src=a.mac, dst=gw) / IP(src=a.ip, dst=b.ip) / ICMP(id=ident, seq=2) / token)
        # control, through the same capture: b pings the gateway and the reply reaches b
        b_gw = lab.sr1(b, Ether(src=b.mac, dst=gw) / IP(src=b.ip, dst=net.gateway) / ICMP(id=ident ^ 1, seq=1))
        from_a = in_b.packets(lambda p: IP in p and (p[IP].src == a.ip or token_filter(token)(p)), timeout=0.5)
        control = in_b.packets(lambda p: ICMP in p and p[ICMP].type == 0 and p[ICMP].id == ident ^ 1, timeout=0)

    assert from_a == [], [p.summary() for p in from_a]
    assert b_gw is not None and b_gw[IP].src == net.gateway, "b cannot ping its gateway"
    assert control, "the capture in b missed the gateway's echo reply"

    a_gw = lab.sr1(a, Ether(src=a.mac, dst=gw) / IP(src=a.ip, dst=net.gateway) / ICMP(id=ident, seq=3))
    assert a_gw is not None and a_gw[ICMP].type == 0 and a_gw[Ether].src == gw, "a cannot ping its gateway"
