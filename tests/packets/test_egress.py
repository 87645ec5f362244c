"""Leaving the network: --internal keeps packets in, a normal network masquerades them out.

"Outside" is the ``outside`` fixture of conftest.py: a namespace of the test's own.
Nothing is ever sent to a real address.
"""

from __future__ import annotations

import secrets

import pytest
from pktlab import ICMP, IP, TCP, Ether, Raw, link_mac, token_filter

pytestmark = pytest.mark.root


def to_outside(box, gw_mac, outside, ident, sport, token):
    """An ICMP echo and a TCP SYN from ``box`` to the outside host, handed to the box's gateway,
    both carrying ``token`` so that they are recognised whatever NAT did to them."""
    base = Ether(src=box.mac, dst=gw_mac) / IP(src=box.ip, dst=outside.addr)
    return [base / ICMP(type=8, id=ident, seq=1) / Raw(token), base / TCP(sport=sport, dport=80, flags="S", seq=1) / Raw(token)]


def test_internal_network_keeps_packets_in_normal_one_masquerades(lab, outside):
    internal = lab.network(internal=True)
    normal = lab.network()
    i1, i2 = lab.box(internal), lab.box(internal)
    e1 = lab.box(normal)
    gw_int, gw_norm = lab.bridge_mac(internal), lab.bridge_mac(normal)
    ident, sport = secrets.randbelow(0xFFFF), 30000 + secrets.randbelow(30000)
    tok_int, tok_norm, tok_in = (secrets.token_bytes(12) for _ in range(3))
    out_mac = link_mac(outside.out_if, outside.path)

    # containers of the internal network still reach each other
    ans = lab.sr1(i1, Ether(src=i1.mac, dst=i2.mac) / IP(src=i1.ip, dst=i2.ip) / ICMP(id=ident))
    assert ans is not None and ans[IP].src == i2.ip and ans[ICMP].type == 0, "internal containers cannot talk"

    # 1. from the internal network: nothing leaves, nothing comes back
    with lab.capture(outside.path, outside.out_if) as at_outside:
        for frame in to_outside(i1, gw_int, outside, ident, sport, tok_int):
            assert lab.sr1(i1, frame, timeout=0.3) is None, f"answer from outside to internal container: {frame.summary()}"
        leaked = at_outside.packets(lambda p: IP in p and (p[IP].dst == outside.addr or token_filter(tok_int)(p)), timeout=0.2)
    assert leaked == [], [p.summary() for p in leaked]

    # 2. the same packets from a normal network arrive, masqueraded to the host's address
    with lab.capture(outside.path, outside.out_if) as at_outside:
        echo, syn = to_outside(e1, gw_norm, outside, ident, sport, tok_norm)
        reply = lab.sr1(e1, echo)
        synack = lab.sr1(e1, syn)
        arrived = at_outside.packets(lambda p: IP in p and token_filter(tok_norm)(p) and p[Ether].dst == out_mac, timeout=0.05)
    assert reply is not None and reply[ICMP].type == 0, "no echo reply from outside to a normal network's container"
    assert (reply[IP].src, reply[IP].dst, reply[Ether].dst) == (outside.addr, e1.ip, e1.mac)
    assert synack is not None and "R" in str(synack[TCP].flags)  # nothing listens outside: RST, de-NATed back to e1
    assert synack[IP].dst == e1.ip and synack[TCP].dport == sport
    protos = sorted(p[IP].proto for p in arrived)
    assert protos == [1, 6], [p.summary() for p in arrived]
    for p in arrived:
        assert p[IP].dst == outside.addr
        assert p[IP].src == outside.host_ip, f"not masqueraded: {p.summary()} (container is {e1.ip})"

    # 3. inbound: a frame from outside toward the internal container enters the host but never reaches it
    with lab.capture(None, outside.host_if) as on_host_if, lab.capture(i1) as in_i1:
        frame = Ether(src=out_mac, dst=link_mac(outside.host_if)) / IP(src=outside.addr, dst=i1.ip) / ICMP(id=ident ^ 1) / tok_in
        lab.send(outside.path, frame, iface=outside.out_if)
        lab.send(i2, Ether(src=i2.mac, dst=i1.mac) / IP(src=i2.ip, dst=i1.ip) / ICMP(id=ident ^ 2))  # control
        got_in = in_i1.packets(lambda p: IP in p and (p[IP].src == outside.addr or token_filter(tok_in)(p)), timeout=0.5)
        entered = on_host_if.packets(token_filter(tok_in), timeout=0.02)
        control = in_i1.packets(lambda p: ICMP in p and p[ICMP].id == ident ^ 2, timeout=0.02)
    assert entered, "the probe never reached the host"
    assert control, "the capture in the internal container saw nothing"
    assert got_in == [], [p.summary() for p in got_in]
