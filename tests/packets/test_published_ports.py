"""A published port at the packet level: kernel DNAT in, the reply's source rewritten back out.

The client is the ``outside`` namespace (another host on the underlay); it sends a raw
SYN to the host's address and the published port. The container must see the client's
own address and port as source (no masquerade of inbound traffic) and its own address
and container port as destination; the client must see the SYN-ACK come from the host's
address and the published port. Ports the container did not publish stay closed, even
to a client with a route to the container's subnet.
"""

from __future__ import annotations

import secrets

import pytest
from reserve import free_port
from pktlab import IP, TCP, Ether, link_mac

from netcore.models import PortBinding

pytestmark = pytest.mark.root


def test_syn_to_a_published_port_is_dnated_and_the_reply_unnated(lab, outside, host):
    net = lab.network()
    cport, hport = 8080, free_port()
    box = lab.box(net, ports=(PortBinding(container_port=cport, host_port=hport),))
    lab.listen_tcp(box, cport)
    sport, seq = 40000 + secrets.randbelow(20000), secrets.randbelow(2**31)
    out_mac, host_if_mac = link_mac(outside.out_if, outside.path), link_mac(outside.host_if)
    syn = Ether(src=out_mac, dst=host_if_mac) / IP(src=outside.peer_ip, dst=outside.host_ip, ttl=64) / TCP(sport=sport, dport=hport, flags="S", seq=seq)

    with lab.capture(box) as in_box, lab.capture(outside.path, outside.out_if) as at_client:
        lab.send(outside.path, syn, iface=outside.out_if)
        arrived = in_box.packets(lambda p: TCP in p and p[TCP].sport == sport and p[TCP].flags == "S", first=True, timeout=2)
        answered = at_client.packets(lambda p: TCP in p and p[TCP].dport == sport and p[TCP].flags == "SA", first=True, timeout=2)

    assert arrived, f"the SYN never reached the container: {in_box.summary()}"
    p = arrived[0]
    assert (p[IP].src, p[TCP].sport) == (outside.peer_ip, sport)  # the client's real address: no SNAT inbound
    assert (p[IP].dst, p[TCP].dport) == (box.ip, cport)  # DNAT to the container's address and port
    assert p[TCP].seq == seq
    assert p[Ether].dst == box.mac and p[Ether].src == lab.bridge_mac(net)  # routed by the host onto the bridge
    assert p[IP].ttl == 63  # one routing hop

    assert answered, f"no SYN-ACK at the client: {at_client.summary()}"
    r = answered[0]
    assert (r[IP].src, r[TCP].sport) == (outside.host_ip, hport)  # the reply's source rewritten back
    assert (r[IP].dst, r[TCP].dport) == (outside.peer_ip, sport)
    assert r[TCP].ack == seq + 1


def test_unpublished_ports_and_direct_routing_stay_closed(lab, outside, host):
    net = lab.network()
    hport = free_port()
    box = lab.box(net, ports=(PortBinding(container_port=8080, host_port=hport),))
    lab.listen_tcp(box, 8080)
    lab.listen_tcp(box, 9090)
    host.run("ip", "-n", outside.netns, "route", "add", net.subnet, "via", outside.host_ip)
    out_mac, host_if_mac = link_mac(outside.out_if, outside.path), link_mac(outside.host_if)
    base = Ether(src=out_mac, dst=host_if_mac) / IP(src=outside.peer_ip)
    sport = 40000 + secrets.randbelow(20000)
    probes = [
        base.copy() / TCP(sport=sport, dport=hport + 1, flags="S"),  # a host port nobody published
        base.copy() / TCP(sport=sport + 1, dport=9090, flags="S"),  # straight to the container, unpublished
        base.copy() / TCP(sport=sport + 2, dport=8080, flags="S"),  # straight to the container, published port
    ]
    probes[0][IP].dst = outside.host_ip
    probes[1][IP].dst = probes[2][IP].dst = box.ip
    control = base.copy() / TCP(sport=sport + 3, dport=hport, flags="S")
    control[IP].dst = outside.host_ip

    with lab.capture(box) as in_box:
        for frame in probes:
            lab.send(outside.path, frame, iface=outside.out_if)
        lab.send(outside.path, control, iface=outside.out_if)
        ok = in_box.packets(lambda p: TCP in p and p[TCP].sport == sport + 3, first=True, timeout=2)
        leaked = in_box.packets(lambda p: TCP in p and p[IP].src == outside.peer_ip and p[TCP].sport in (sport, sport + 1, sport + 2), timeout=0.5)
    assert ok, "the published port (control) was not reachable"
    assert leaked == [], [p.summary() for p in leaked]
