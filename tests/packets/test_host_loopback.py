"""The host's loopback is the host's own: a container cannot reach a service bound to 127.0.0.1.

Bridges (and routed veths) have route_localnet on, so that the host can reach ports
published on 127.0.0.1; that must not open the other direction. The probe is a raw SYN
from the container through its gateway to 127.0.0.1, with a host listener on that port;
the control, through the same bridge and the same route_localnet, is a port published on
127.0.0.1 and reached from the host.
"""

from __future__ import annotations

import secrets
import socket

import pytest
from reserve import free_port
from pktlab import IP, TCP, Ether

from netcore.models import PortBinding

pytestmark = pytest.mark.root


@pytest.mark.parametrize("driver", ["bridge", "routed"])
def test_a_container_cannot_reach_the_hosts_loopback(lab, driver):
    net = lab.network(driver=driver)
    hport = free_port("127.0.0.1")
    box = lab.box(net, ports=(PortBinding(container_port=8080, host_port=hport, host_ip="127.0.0.1"),))
    in_box = lab.listen_tcp(box, 8080)
    in_box.settimeout(3)
    # control: the host reaches the port published on its loopback, into the container
    with socket.create_connection(("127.0.0.1", hport), timeout=3):
        conn, peer = in_box.accept()
        conn.close()

    lport = free_port("127.0.0.1")
    host_listener = socket.create_server(("127.0.0.1", lport), backlog=8)
    host_listener.settimeout(1.0)
    try:
        gw_mac = _gateway_mac(lab, box)
        sport, seq = 40000 + secrets.randbelow(20000), secrets.randbelow(2**31)
        syn = Ether(src=box.mac, dst=gw_mac) / IP(src=box.ip, dst="127.0.0.1") / TCP(sport=sport, dport=lport, flags="S", seq=seq)
        with lab.capture(box) as cap:
            lab.send(box, syn, count=3)
            answers = cap.packets(lambda p: TCP in p and p[TCP].dport == sport and p[TCP].flags & 0x12 == 0x12, timeout=1.0)
        assert answers == [], cap.summary()
        with pytest.raises(socket.timeout):
            host_listener.accept()[0].close()  # no handshake ever completed
    finally:
        host_listener.close()


def _gateway_mac(lab, box) -> str:
    """The MAC the container sends routed traffic to: the bridge's, or (routed) the host veth end's."""
    from pktlab import link_mac

    if box.network.driver == "routed":
        return link_mac(box.veth)
    return lab.bridge_mac(box.network)
