"""VXLAN on the underlay, seen with scapy: the right VNI and inner frames, nothing flooded.

Three hosts of the multi-host lab (tests/integration/multihost.py); containers of one
overlay network on hosts 1 and 2 only. Captures are on the underlay bridge's ports in
the test's own namespace (the hosts' veths), so they see exactly what crosses the wire.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration"))
from multihost import Lab  # noqa: E402
from pktlab import IP, ICMP, Ether, Lab as PacketLab  # noqa: E402
from scapy.layers.inet import UDP  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

pytestmark = pytest.mark.root


@pytest.fixture
def lab3(tmp_path):
    lab = Lab(tmp_path, 3)
    yield lab
    lab.close()


def test_frames_between_hosts_are_vxlan_with_the_vni_and_nothing_floods(lab3, controller, unique):
    h1, h2, h3 = lab3.hosts
    net = f"w{unique}"
    h1("network", "create", "-d", "overlay", net)
    vni = int(h1.json("network", "inspect", net)[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"])
    lab3.wait(lambda: net in h2("network", "ls").stdout and net in h3("network", "ls").stdout)
    h1("run", "-d", "--name", f"{net}-a", "--network", net, "--", "sleep", "120")
    h2("run", "-d", "--name", f"{net}-b", "--network", net, "--", "sleep", "120")
    a = h1.json("inspect", f"{net}-a")[0]["NetworkSettings"]["Networks"][net]
    b = h2.json("inspect", f"{net}-b")[0]["NetworkSettings"]["Networks"][net]
    # h1 must know b before the capture: wait for the ping to work at all
    lab3.wait(lambda: h1("exec", f"{net}-a", "ping", "-c", "1", "-W", "1", b["IPAddress"], check=False).returncode == 0)

    pl = PacketLab(controller, unique)
    try:
        with pl.capture(None, h2.veth) as to_h2, pl.capture(None, h3.veth) as to_h3:
            h1("exec", f"{net}-a", "ping", "-c", "3", "-i", "0.2", b["IPAddress"])
            h1("exec", f"{net}-a", "ping", "-c", "1", "-W", "1", "-b", "255.255.255.255", check=False)  # a broadcast
            seen = to_h2.packets(lambda p: UDP in p and p[UDP].dport == 4789 and IP in p and p[IP].dst == h2.ip, timeout=1.0)
            flooded = to_h3.packets(lambda p: UDP in p and p[UDP].dport == 4789, timeout=0.5)
    finally:
        pl.close()

    echoes = [p for p in seen if ICMP in p[VXLAN].payload and p[VXLAN].payload[ICMP].type == 8]
    assert len(echoes) >= 3, [p.summary() for p in seen]
    for p in echoes:
        assert p[IP].src == h1.ip and p[IP].dst == h2.ip  # VTEP to VTEP on the underlay
        assert p[VXLAN].vni == vni and p[VXLAN].flags & 0x08  # "VNI present"
        inner = p[VXLAN].payload
        assert inner[Ether].src == a["MacAddress"] and inner[Ether].dst == b["MacAddress"]
        assert inner[IP].src == a["IPAddress"] and inner[IP].dst == b["IPAddress"]
    assert flooded == [], [p.summary() for p in flooded]  # h3 has no container on the network
