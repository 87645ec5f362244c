"""Overlay networks across hosts: one etcd, engines in host namespaces on an underlay bridge.

See multihost.py for the lab. Waits are bounded polls (the cluster converges through
etcd watches); nothing asserts a duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from cli_engine import free_port
from multihost import Lab
from netcore import names

pytestmark = pytest.mark.root

SERVE = (
    "import socket,sys\n"
    "s=socket.create_server(('',int(sys.argv[1])))\n"
    "while True:\n"
    "    c,a=s.accept(); n=0\n"
    "    while True:\n"
    "        d=c.recv(65536)\n"
    "        if not d: break\n"
    "        n+=len(d)\n"
    "    c.sendall(str(n).encode()); c.close()\n"
)
SEND = (
    "import socket,sys,time\n"
    "for i in range(50):\n"
    "    try:\n"
    "        c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5); break\n"
    "    except OSError: time.sleep(0.1)\n"
    "c.sendall(b'x'*int(sys.argv[3])); c.shutdown(socket.SHUT_WR); print(c.recv(100).decode())\n"
)


@pytest.fixture
def lab2(tmp_path):
    """Two hosts of the test's own: no test depends on what another left in a shared lab."""
    lab = Lab(tmp_path, 2)
    yield lab
    lab.close()


def ip_on(host, cname: str, net: str) -> str:
    return host.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def mac_on(host, cname: str, net: str) -> str:
    return host.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]["MacAddress"]


def fdb(host, net_id: str) -> set[tuple[str, str]]:
    """(MAC, remote VTEP) of the static entries on the host's overlay namespace for the network."""
    ns = f"nc-{names.engine_tag(host.engine.root)}-ov-{net_id[:10]}"
    out = host.run_in("ip", "netns", "exec", ns, "bridge", "-j", "fdb", "show", "dev", "vxlan0")
    if out.returncode != 0:
        return set()
    return {(e["mac"], e["dst"]) for e in json.loads(out.stdout or "[]") if e.get("dst")}


def overlay(lab, name: str) -> str:
    """An overlay network made on the first host, once every host shows it; its id."""
    nid = lab.hosts[0]("network", "create", "-d", "overlay", name).stdout.strip()
    for h in lab.hosts[1:]:
        lab.wait(lambda: name in h("network", "ls").stdout)
    return nid


def pings(host, cname: str, ip: str) -> bool:
    return host("exec", cname, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0


def test_an_overlay_network_is_the_clusters(lab2, name):
    h1, h2 = lab2.hosts
    nid = overlay(lab2, name)
    view = h2.json("network", "inspect", name)[0]
    assert view["Id"] == nid
    assert view["Driver"] == "overlay" and view["Scope"] == "global"
    assert view["Options"]["com.docker.network.driver.overlay.vxlanid_list"].isdigit()
    assert h1.json("network", "inspect", name)[0]["IPAM"] == view["IPAM"]

    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
    res = h2("network", "rm", name, check=False)  # the container is on the other host
    assert res.returncode != 0 and f"has active endpoints ({name}-a)" in res.stderr
    h1("rm", "-f", f"{name}-a")
    h2("network", "rm", name)
    lab2.wait(lambda: name not in h1("network", "ls").stdout)
    res = h1("network", "create", "-d", "overlay", "--subnet", view["IPAM"]["Config"][0]["Subnet"], f"{name}x", check=False)
    assert res.returncode == 0, res.stderr  # its subnet is free again
    h1("network", "rm", f"{name}x")


@pytest.mark.parametrize("underlay,option,expected", [(9000, None, 8950), (1400, None, 1350), (1500, 1300, 1300)])
def test_the_overlay_mtu_follows_the_underlay_or_the_option(tmp_path, name, underlay, option, expected):
    """The container's MTU is the underlay's minus 50 (VXLAN over IPv4), or ``-o mtu``: a
    datagram of exactly that size crosses between hosts with DF set, one byte more does not."""
    lab = Lab(tmp_path, 2, mtu=underlay)
    try:
        h1, h2 = lab.hosts
        h1("network", "create", "-d", "overlay", *(("-o", f"mtu={option}") if option else ()), name)
        lab.wait(lambda: name in h2("network", "ls").stdout)
        h1("run", "-d", "--name", f"{name}-srv", "--network", name, "--", "sleep", "120")
        h2("run", "-d", "--name", f"{name}-cli", "--network", name, "--", "sleep", "120")
        srv = ip_on(h1, f"{name}-srv", name)
        cli = ip_on(h2, f"{name}-cli", name)
        (link,) = [i for i in json.loads(h2("exec", f"{name}-cli", "ip", "-j", "-4", "addr").stdout)
                   if any(a["local"] == cli for a in i["addr_info"])]
        assert link["mtu"] == expected
        assert pings(h2, f"{name}-cli", srv)
        fits = h2("exec", f"{name}-cli", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(expected - 28), srv, check=False)
        assert fits.returncode == 0, fits.stdout + fits.stderr
        over = h2("exec", f"{name}-cli", "ping", "-c", "1", "-W", "1", "-M", "do", "-s", str(expected - 27), srv, check=False)
        assert over.returncode != 0, over.stdout
    finally:
        lab.close()


def test_containers_on_two_hosts_talk_by_name_with_full_size_segments(lab2, name):
    h1, h2 = lab2.hosts
    overlay(lab2, name)
    h1("run", "-d", "--name", f"{name}-srv", "--network", name, "--", "python3", "-c", SERVE, "7000")
    h2("run", "-d", "--name", f"{name}-cli", "--network", name, "--", "sleep", "120")
    srv = ip_on(h1, f"{name}-srv", name)
    assert pings(h2, f"{name}-cli", srv)
    out = h2("exec", f"{name}-cli", "getent", "hosts", f"{name}-srv").stdout.split()
    assert out[0] == srv
    # MTU: the underlay's 1500 minus 50, on the container's overlay interface
    link = json.loads(h2("exec", f"{name}-cli", "ip", "-j", "link", "show", "eth0").stdout)[0]
    assert link["mtu"] == 1450
    # IPv4 only: neither end of the container's veth has an IPv6 address (nothing for br0 to flood)
    nid = h2.json("network", "inspect", name)[0]["Id"]
    host_end = names.veth_name(h2.json("inspect", f"{name}-cli")[0]["NetworkSettings"]["Networks"][name]["EndpointID"])
    res = h2.run_in("ip", "netns", "exec", f"nc-{names.engine_tag(h2.engine.root)}-ov-{nid[:10]}", "ip", "-6", "addr", "show", "dev", host_end)
    assert (res.returncode, res.stdout) == (0, "")
    assert h2("exec", f"{name}-cli", "ip", "-6", "addr", "show", "dev", "eth0").stdout == ""
    assert h2("exec", f"{name}-cli", "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", srv, check=False).returncode == 0
    assert h2("exec", f"{name}-cli", "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1423", srv, check=False).returncode != 0
    # a TCP transfer of full-size segments arrives whole
    size = 4 * 1024 * 1024
    got = h2("exec", f"{name}-cli", "python3", "-c", SEND, f"{name}-srv", "7000", str(size)).stdout.strip()
    assert got == str(size)
    # the default route (egress, published ports) is on the local gateway bridge, eth1
    route = h2("exec", f"{name}-cli", "ip", "-4", "route", "show", "default").stdout.split()
    assert route[4] == "eth1"
    for c, h in ((f"{name}-srv", h1), (f"{name}-cli", h2)):
        h("rm", "-f", c)
    h1("network", "rm", name)


def addresses(host, cname: str) -> set[str]:
    """Every IPv4 address of the container but loopback: the overlay's and the gateway bridge's."""
    out = json.loads(host("exec", cname, "ip", "-j", "-4", "addr").stdout)
    return {a["local"] for i in out if i["ifname"] != "lo" for a in i["addr_info"]}


def resolves(host, cname: str, name: str) -> bool:
    return host("exec", cname, "getent", "hosts", name, check=False).returncode == 0


def test_two_overlay_networks_are_isolated_on_one_host_and_across_hosts(lab2, name):
    h1, h2 = lab2.hosts
    for n in ("x", "y"):
        overlay(lab2, f"{name}{n}")
        h1("run", "-d", "--name", f"{name}-{n}1", "--network", f"{name}{n}", "--", "sleep", "120")
        h2("run", "-d", "--name", f"{name}-{n}2", "--network", f"{name}{n}", "--", "sleep", "120")
    x2, y2 = ip_on(h2, f"{name}-x2", f"{name}x"), ip_on(h2, f"{name}-y2", f"{name}y")
    # controls: each network works across hosts, by address and by name
    assert pings(h1, f"{name}-x1", x2) and pings(h1, f"{name}-y1", y2)
    assert resolves(h1, f"{name}-x1", f"{name}-x2") and resolves(h1, f"{name}-y1", f"{name}-y2")
    # x1 reaches none of y's containers, on its own host or the other, by any of their addresses
    # (both also sit on the gateway bridge), and resolves none of their names
    for host, target in ((h1, f"{name}-y1"), (h2, f"{name}-y2")):
        for ip in addresses(host, target):
            assert not pings(h1, f"{name}-x1", ip), (target, ip)
        assert not resolves(h1, f"{name}-x1", target)
    for ip in addresses(h2, f"{name}-x2"):
        assert not pings(h1, f"{name}-y1", ip), ip
    h1("rm", "-f", f"{name}-x1", f"{name}-y1")
    h2("rm", "-f", f"{name}-x2", f"{name}-y2")
    h1("network", "rm", f"{name}x", f"{name}y")


def test_joins_and_leaves_reach_the_other_host(lab2, name):
    h1, h2 = lab2.hosts
    nid = overlay(lab2, name)
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
    assert fdb(h1, nid) == set()  # nobody else yet: nothing programmed, nothing flooded
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "120")
    b_mac = mac_on(h2, f"{name}-b", name)
    assert lab2.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})
    assert lab2.wait(lambda: h1("exec", f"{name}-a", "getent", "hosts", f"{name}-b", check=False).returncode == 0)
    h2("rm", "-f", f"{name}-b")
    assert lab2.wait(lambda: fdb(h1, nid) == set())
    assert lab2.wait(lambda: h1("exec", f"{name}-a", "getent", "hosts", f"{name}-b", check=False).returncode != 0)
    h1("rm", "-f", f"{name}-a")
    h1("network", "rm", name)


def test_published_ports_on_an_overlay_container(lab2, name):
    h1, h2 = lab2.hosts
    overlay(lab2, name)
    hport = free_port()
    h2("run", "-d", "--name", f"{name}-web", "--network", name, "-p", f"{hport}:7000", "--", "python3", "-c", SERVE, "7000")
    # from the other host, over the underlay, to the host's address
    out = h1.run_in(sys.executable, "-c", SEND, h2.ip, str(hport), "1000")
    assert out.stdout.strip() == "1000", out.stderr
    h2("rm", "-f", f"{name}-web")
    h1("network", "rm", name)


def test_restart_resyncs_without_stale_entries(lab2, name):
    lab = lab2
    h1, h2 = lab.hosts
    nid = overlay(lab, name)
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
    h2("run", "-d", "--name", f"{name}-c", "--network", name, "--", "sleep", "300")
    b_mac, c_mac = mac_on(h2, f"{name}-b", name), mac_on(h2, f"{name}-c", name)
    assert lab.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip), (c_mac, h2.ip)})

    h1.engine.kill9()  # h1's engine is away while c leaves
    h2("rm", "-f", f"{name}-c")
    assert fdb(h1, nid) == {(b_mac, h2.ip), (c_mac, h2.ip)}  # nobody told h1's kernel
    h1.engine.start()
    assert lab.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})  # stale entry gone, live one kept
    assert pings(h1, f"{name}-a", ip_on(h2, f"{name}-b", name))
    endpoints = [e for e in h1.json("network", "inspect", name)[0]["Containers"].values()]
    assert [e["Name"] for e in endpoints] == [f"{name}-a"]  # local view: no duplicate after the restart


def test_a_vanished_host_is_forgotten_when_its_lease_expires(lab2, name):
    lab = lab2
    h1, h2 = lab.hosts
    nid = overlay(lab, name)
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
    b_mac = mac_on(h2, f"{name}-b", name)
    assert lab.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})
    h2.engine.kill9()  # no cleanup at all: the lease (ttl 3 s) lapses
    assert lab.wait(lambda: fdb(h1, nid) == set(), timeout=20)
    assert lab.wait(lambda: h1("exec", f"{name}-a", "getent", "hosts", f"{name}-b", check=False).returncode != 0)
    h2.engine.start()  # back: it publishes its container again
    assert lab.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})


def test_a_host_cut_off_from_etcd_past_its_lease_joins_again_by_itself(lab2, name):
    """The engine keeps running while its lease lapses (the cluster forgets its containers);
    once etcd answers again it joins under a new lease and publishes them, no restart."""
    h1, h2 = lab2.hosts
    nid = overlay(lab2, name)
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
    b_mac, b_ip = mac_on(h2, f"{name}-b", name), ip_on(h2, f"{name}-b", name)
    assert lab2.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})
    etcd_ip, etcd_port = lab2.etcd.url.removeprefix("etcd://").rsplit(":", 1)
    table = f"nctcut{lab2.id}"
    rules = (f"table inet {table} {{\n chain out {{\n  type filter hook output priority 0;\n"
             f"  ip daddr {etcd_ip} tcp dport {etcd_port} drop\n }}\n}}\n")
    subprocess.run(["nsenter", f"--net={h2.path}", "nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        # the lease (ttl 3 s) lapses on etcd: h1 forgets b
        assert lab2.wait(lambda: fdb(h1, nid) == set(), timeout=30)
    finally:
        subprocess.run(["nsenter", f"--net={h2.path}", "nft", "delete", "table", "inet", table], check=True)
    assert h2.engine.proc.poll() is None  # the engine never stopped
    assert lab2.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)}, timeout=60)  # rejoined, b published again
    assert lab2.wait(lambda: pings(h1, f"{name}-a", b_ip), timeout=10)


def test_etcd_away_local_work_goes_on_global_fails_fast(lab2, name):
    lab = lab2
    h1, h2 = lab.hosts
    nid = overlay(lab, name)
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
    b_mac, b_ip = mac_on(h2, f"{name}-b", name), ip_on(h2, f"{name}-b", name)
    assert lab.wait(lambda: fdb(h1, nid) == {(b_mac, h2.ip)})
    lab.etcd.kill()
    try:
        h1("network", "create", f"{name}-local")  # local scope: no etcd needed
        h1("run", "--rm", "--network", f"{name}-local", "--", "true")
        res = h1("network", "create", "-d", "overlay", f"{name}-ov", check=False, timeout=30)
        assert res.returncode != 0 and "cluster store" in res.stderr and "unreachable" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert pings(h1, f"{name}-a", b_ip)  # the data path needs no etcd
        h1.engine.kill9()
        h1.engine.start()  # an engine can start while etcd is away, with its local networks
        assert name in h1("network", "ls").stdout and f"{name}-local" in h1("network", "ls").stdout
    finally:
        lab.etcd.restart()
    lab.wait(lambda: h2("network", "create", "-d", "overlay", f"{name}-ov", check=False).returncode == 0, timeout=20)
    assert lab.wait(lambda: f"{name}-ov" in h1("network", "ls").stdout, timeout=20)  # h1 caught up
    assert fdb(h1, nid) == {(b_mac, h2.ip)} and pings(h1, f"{name}-a", b_ip)


def test_five_hosts_allocate_at_the_same_time(tmp_path, name):
    lab = Lab(tmp_path, 5)
    try:
        results: dict[int, str] = {}

        def create(i: int) -> None:
            res = lab.hosts[i]("network", "create", "-d", "overlay", f"{name}{i}", check=False)
            results[i] = res.stdout.strip() if res.returncode == 0 else "ERR " + res.stderr

        threads = [threading.Thread(target=create, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(not v.startswith("ERR") for v in results.values()), results
        views = [lab.hosts[0].json("network", "inspect", f"{name}{i}")[0] for i in range(5)]
        vnis = {v["Options"]["com.docker.network.driver.overlay.vxlanid_list"] for v in views}
        subnets = {v["IPAM"]["Config"][0]["Subnet"] for v in views}
        assert len(vnis) == 5 and len(subnets) == 5

        net = f"{name}0"
        for h in lab.hosts:
            lab.wait(lambda: net in h("network", "ls").stdout)

        def run(i: int, j: int) -> None:
            lab.hosts[i]("run", "-d", "--name", f"{name}-{i}-{j}", "--network", net, "--", "sleep", "120")

        threads = [threading.Thread(target=run, args=(i, j)) for i in range(5) for j in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ips = [ip_on(lab.hosts[i], f"{name}-{i}-{j}", net) for i in range(5) for j in range(2)]
        assert len(set(ips)) == 10, ips
        # first and last host, both ways
        assert pings(lab.hosts[0], f"{name}-0-0", ips[-1])
        assert pings(lab.hosts[4], f"{name}-4-1", ips[0])
    finally:
        lab.close()


def test_the_overlay_namespace_goes_with_the_last_container_even_before_the_kernel_reaped(lab2, name):
    """A removed container's veth is the kernel's to reap (with its netns), so it must not count as
    a container still on br0: here we hold the first container's netns open, so its veth stays."""
    h1, _ = lab2.hosts
    nid = overlay(lab2, name)
    ov = f"nc-{names.engine_tag(h1.engine.root)}-ov-{nid[:10]}"
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
    h1("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "120")
    held = os.open(h1.json("inspect", f"{name}-a")[0]["NetworkSettings"]["SandboxKey"], os.O_RDONLY)
    try:
        h1("rm", "-f", f"{name}-a")
        ports = h1.run_in("ip", "netns", "exec", ov, "ip", "-o", "link", "show", "master", "br0").stdout
        assert ports.count("ncve-") == 2  # a's veth is still there, waiting for its netns
        h1("rm", "-f", f"{name}-b")
        assert ov not in os.listdir("/run/netns")  # b was the last container: the namespace went
    finally:
        os.close(held)
    h1("network", "rm", name)
