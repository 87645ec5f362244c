"""VXLAN on the underlay, seen with scapy: the right VNI and inner frames, nothing flooded.

Three hosts of the multi-host lab (tests/integration/multihost.py); containers of one
overlay network on hosts 1 and 2 only. Captures are on the underlay bridge's ports in
the test's own namespace (the hosts' veths), so they see exactly what crosses the wire.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration"))
from multihost import Lab  # noqa: E402
from netcore import names  # noqa: E402
from pktlab import ARP, BROADCAST, IP, ICMP, Ether, Lab as PacketLab, Raw, token_filter  # noqa: E402
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

    # The overlay namespace on h1 (br0 + vxlan0) and container a's overlay interface.
    net_id = h1.json("network", "inspect", net)[0]["Id"]
    ovns = f"/run/netns/nc-{names.engine_tag(h1.engine.root)}-ov-{net_id[:10]}"
    a_ns = h1.json("inspect", f"{net}-a")[0]["NetworkSettings"]["SandboxKey"]
    a_if = _ifname_with_mac(a_ns, a["MacAddress"])
    # An ARP broadcast for an address nobody has, and a broadcast datagram (vxlan0's proxy
    # answers or drops ARP itself, so only the datagram shows a default destination): both
    # must reach vxlan0 and go no further.
    subnet = ipaddress.ip_network(h1.json("network", "inspect", net)[0]["IPAM"]["Config"][0]["Subnet"])
    nobody = str(subnet.network_address + subnet.num_addresses - 2)
    arp = Ether(src=a["MacAddress"], dst=BROADCAST) / ARP(op=1, hwsrc=a["MacAddress"], psrc=a["IPAddress"], pdst=nobody)
    token = f"flood-{unique}".encode()
    datagram = Ether(src=a["MacAddress"], dst=BROADCAST) / IP(src=a["IPAddress"], dst="255.255.255.255") / UDP(dport=9) / Raw(token)

    def is_probe(p) -> bool:
        return (ARP in p and p[ARP].pdst == nobody) or token in bytes(p)

    def vxlan_probe(p) -> bool:
        return UDP in p and p[UDP].dport == 4789 and VXLAN in p and is_probe(p[VXLAN].payload)

    pl = PacketLab(controller, unique)
    try:
        with pl.capture(None, h2.veth) as to_h2, pl.capture(None, h3.veth) as to_h3, pl.capture(ovns, "vxlan0") as on_vxlan:
            h1("exec", f"{net}-a", "ping", "-c", "3", "-i", "0.2", b["IPAddress"])
            pl.send(a_ns, arp, count=3, iface=a_if)
            pl.send(a_ns, datagram, count=3, iface=a_if)
            reached_arp = on_vxlan.packets(lambda p: ARP in p and p[ARP].pdst == nobody, timeout=1.0, first=True)
            reached = on_vxlan.packets(token_filter(token), timeout=1.0, first=True)
            seen = to_h2.packets(lambda p: UDP in p and p[UDP].dport == 4789 and IP in p and p[IP].dst == h2.ip, timeout=1.0)
            flooded_h2 = to_h2.packets(vxlan_probe, timeout=0.2)
            flooded_h3 = to_h3.packets(lambda p: UDP in p and p[UDP].dport == 4789, timeout=0.5)
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
    # the broadcast did enter the overlay (br0 flooded it to vxlan0) ...
    assert reached_arp and reached, on_vxlan.summary()
    # ... and vxlan0 sent it nowhere: no default destination, no VXLAN on any underlay port
    assert flooded_h2 == [], [p.summary() for p in flooded_h2]
    assert flooded_h3 == [], [p.summary() for p in flooded_h3]  # h3 has no container on the network
    fdb = json.loads(subprocess.run(["nsenter", f"--net={ovns}", "bridge", "-j", "fdb", "show", "dev", "vxlan0"],
                                    capture_output=True, text=True, check=True).stdout)
    assert fdb and not [e for e in fdb if e.get("mac") == "00:00:00:00:00:00"], fdb


def _ifname_with_mac(path: str, mac: str) -> str:
    out = subprocess.run(["nsenter", f"--net={path}", "ip", "-j", "link"], capture_output=True, text=True, check=True)
    (name,) = [link["ifname"] for link in json.loads(out.stdout) if link.get("address") == mac]
    return name
