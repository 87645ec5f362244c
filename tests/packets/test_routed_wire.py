"""The routed driver on the wire, seen with scapy.

- one host: a container's ARP for 169.254.1.1 is answered (proxy ARP) with the MAC of
  its veth's host end; a packet from a routed network toward another routed network or a
  bridge network is dropped (with a positive control through the same capture);
- two hosts of the multi-host lab: between hosts the packets on the underlay are plain
  IPv4 with the containers' addresses (no encapsulation), the TTL lowered once per
  routing hop (the sending host, then the receiving host), in both routing modes.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration"))
from multihost import Lab  # noqa: E402
from pktlab import ARP, BROADCAST, ICMP, IP, TCP, Ether, Lab as PacketLab, Raw, link_mac, token_filter  # noqa: E402
from scapy.layers.inet import UDP  # noqa: E402

from netcore import names  # noqa: E402

pytestmark = pytest.mark.root

GW = "169.254.1.1"


def test_arp_for_the_gateway_is_answered_with_the_host_veths_mac(lab):
    net = lab.network(driver="routed")
    box = lab.box(net)
    assert box.endpoint.address == f"{box.ip}/32"
    veth_mac = link_mac(box.veth)
    ans = lab.sr1(box, Ether(src=box.mac, dst=BROADCAST) / ARP(op=1, hwsrc=box.mac, psrc=box.ip, pdst=GW), timeout=2)
    assert ans is not None and ARP in ans, "no ARP reply for 169.254.1.1"
    assert ans[ARP].op == 2 and ans[ARP].psrc == GW and ans[ARP].hwsrc == veth_mac and ans[Ether].src == veth_mac
    assert veth_mac == "ee:ee:ee:ee:ee:ee"  # Calico's: the same on every veth and host


def test_a_routed_network_is_isolated_from_other_routed_and_bridge_networks(lab, port):
    ra, rb = lab.network(driver="routed"), lab.network(driver="routed")
    br = lab.network()
    a, a2 = lab.box(ra), lab.box(ra)
    b = lab.box(rb)
    c = lab.box(br)
    gw_mac = link_mac(a.veth)
    token, control = secrets.token_bytes(12), secrets.token_bytes(12)
    sport = 30000 + secrets.randbelow(30000)

    def syn(dst_ip, tok, sp):
        return Ether(src=a.mac, dst=gw_mac) / IP(src=a.ip, dst=dst_ip) / TCP(sport=sp, dport=port, flags="S") / Raw(tok)

    with lab.capture(None, b.veth) as to_b, lab.capture(None, c.veth) as to_c, lab.capture(None, a2.veth) as to_a2:
        lab.send(a, syn(b.ip, token, sport), count=3)  # routed -> routed (another pool)
        lab.send(a, syn(c.ip, token, sport + 1), count=3)  # routed -> bridge
        lab.send(a, syn(a2.ip, control, sport + 2))  # control: its own network
        got_a2 = to_a2.packets(token_filter(control), timeout=1.0, first=True)
        got_b = to_b.packets(token_filter(token), timeout=0.5)
        got_c = to_c.packets(token_filter(token), timeout=0.05)
    assert got_a2 and got_a2[0][IP].src == a.ip and got_a2[0][IP].dst == a2.ip  # routed, not NATed
    assert got_b == [] and got_c == [], [p.summary() for p in got_b + got_c]

    # and back: the bridge network's container cannot reach the routed one either, while a2
    # (same routed network) does, through the same capture
    a2_gw = link_mac(a2.veth)
    with lab.capture(None, a.veth) as to_a:
        lab.send(c, Ether(src=c.mac, dst=lab.bridge_mac(br)) / IP(src=c.ip, dst=a.ip) / ICMP(id=sport & 0xFFFF) / token, count=2)
        lab.send(a2, Ether(src=a2.mac, dst=a2_gw) / IP(src=a2.ip, dst=a.ip) / ICMP(id=sport & 0xFFFF) / control)
        back = to_a.packets(token_filter(token), timeout=0.5)
        reached = to_a.packets(token_filter(control), timeout=0)
    assert back == [], [p.summary() for p in back]
    assert reached and reached[0][IP].src == a2.ip, to_a.summary()


@pytest.fixture
def lab2(tmp_path):
    lab = Lab(tmp_path, 2)
    yield lab
    lab.close()


@pytest.mark.parametrize("mode", ["store", "bgp"])
def test_between_hosts_plain_ipv4_with_container_addresses_and_one_ttl_step_per_hop(lab2, controller, unique, mode):
    h1, h2 = lab2.hosts
    net = f"w{unique}"
    h1("network", "create", "-d", "routed", "-o", f"routing={mode}", "-o", "block-size=28", "--subnet", unique.subnet(), net)
    lab2.wait(lambda: net in h2("network", "ls").stdout)
    h1("run", "-d", "--name", f"{net}-a", "--network", net, "--", "sleep", "120")
    h2("run", "-d", "--name", f"{net}-b", "--network", net, "--", "sleep", "120")
    a = h1.json("inspect", f"{net}-a")[0]["NetworkSettings"]["Networks"][net]
    b = h2.json("inspect", f"{net}-b")[0]["NetworkSettings"]["Networks"][net]
    lab2.wait(lambda: h1("exec", f"{net}-a", "ping", "-c", "1", "-W", "1", b["IPAddress"], check=False).returncode == 0, timeout=30, interval=0.2)
    b_veth = names.veth_name(b["EndpointID"])

    pl = PacketLab(controller, unique)
    try:
        with pl.capture(None, h2.veth) as wire, pl.capture(h2.path, b_veth) as into_b:
            h1("exec", f"{net}-a", "ping", "-c", "3", "-i", "0.2", "-t", "64", b["IPAddress"])
            echoes = wire.packets(lambda p: ICMP in p and p[ICMP].type == 8 and p[IP].dst == b["IPAddress"], timeout=1.0)
            vxlan = wire.packets(lambda p: UDP in p and p[UDP].dport in (4789, 8472), timeout=0)
            delivered = into_b.packets(lambda p: ICMP in p and p[ICMP].type == 8 and p[IP].dst == b["IPAddress"], timeout=0.2)
    finally:
        pl.close()

    assert len(echoes) >= 3, wire.summary()
    assert vxlan == []
    block_b = ipaddress.ip_network(f"{b['IPAddress']}/28", strict=False)
    for p in echoes:
        assert p[IP].src == a["IPAddress"] and p[IP].dst == b["IPAddress"]  # the containers' own addresses
        assert p[IP].proto == 1 and p[IP].ttl == 63  # no encapsulation; h1 routed it once
        assert p[Ether].dst == link_mac("eth0", h2.path)  # to h2, the owner of b's block
    assert ipaddress.ip_address(b["IPAddress"]) in block_b
    assert delivered and all(p[IP].ttl == 62 for p in delivered)  # h2 routed it once more
    h1("rm", "-f", f"{net}-a")
    h2("rm", "-f", f"{net}-b")
    h1("network", "rm", net)
