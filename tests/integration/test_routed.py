"""The routed driver through the CLI: one host (a private engine), then 2 and 5 hosts of the
multi-host lab (multihost.py: netns hosts without a default route, one etcd), in both
routing modes. Waits are bounded polls; nothing asserts a duration.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest

from cli_engine import free_port, netns_exec
from multihost import Lab
from netcore import names

pytestmark = pytest.mark.root

GW = "169.254.1.1"
HOST_MAC = "ee:ee:ee:ee:ee:ee"
SERVE = (
    "import socket,sys\n"
    "s=socket.create_server(('',int(sys.argv[1])))\n"
    "while True:\n"
    "    c,a=s.accept(); c.sendall(a[0].encode()); c.close()\n"
)
ASK = (
    "import socket,sys,time\n"
    "for i in range(50):\n"
    "    try:\n"
    "        c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3); break\n"
    "    except OSError: time.sleep(0.1)\n"
    "print(c.recv(100).decode())\n"
)


def ip_on(host, cname: str, net: str) -> str:
    return host.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def ep_on(host, cname: str, net: str) -> dict:
    return host.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]


def pings(host, cname: str, ip: str) -> bool:
    return host("exec", cname, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0


def host_addresses() -> set[str]:
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True).stdout
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}


def routes(where=None) -> list[dict]:
    argv = ["ip", "-j", "-4", "route", "show", "table", "main"]
    out = (netns_exec(where, *argv) if where else subprocess.run(argv, capture_output=True, text=True)).stdout
    return json.loads(out or "[]")


def state(host, net: str) -> dict:
    return host.json("network", "inspect", net)[0]["DriverState"]


def blocks(host, net: str) -> dict[str, str]:
    return {b["Block"]: b["Host"] for b in state(host, net)["Blocks"]}


# ============================================================ one host =======


def test_one_host_calico_data_path(engine, subnet, name):
    engine("network", "create", "-d", "routed", "--subnet", subnet, "-o", "block-size=28", name)
    view = engine.json("network", "inspect", name)[0]
    assert view["Scope"] == "local" and view["IPAM"]["Driver"] == "routed"
    assert view["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": GW}]
    engine("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
    engine("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "120")
    a, b = ep_on(engine, f"{name}-a", name), ep_on(engine, f"{name}-b", name)
    assert a["IPPrefixLen"] == 32 and a["Gateway"] == GW
    assert pings(engine, f"{name}-a", b["IPAddress"])
    assert engine("exec", f"{name}-a", "getent", "hosts", f"{name}-b").stdout.split()[0] == b["IPAddress"]
    # inside: the /32, a link route to 169.254.1.1 and the default through it
    inside = {(r["dst"], r.get("gateway"), r.get("scope")) for r in json.loads(engine("exec", f"{name}-a", "ip", "-j", "-4", "route").stdout)}
    assert inside == {("default", GW, None), (GW, None, "link")}
    # on the host: a /32 per container on its veth (proxy ARP on, MAC ee:ee...), one blackhole per block
    block = str(ipaddress.ip_network(f"{a['IPAddress']}/28", strict=False))
    assert blocks(engine, name) == {block: "local"}
    veth = names.veth_name(a["EndpointID"])
    host_routes = routes()
    assert {"dst": a["IPAddress"], "dev": veth, "protocol": "78", "scope": "link", "flags": []} in host_routes
    assert any(r.get("type") == "blackhole" and r["dst"] == block for r in host_routes)
    assert open(f"/proc/sys/net/ipv4/conf/{veth}/proxy_arp").read().strip() == "1"
    assert open(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6").read().strip() == "1"
    assert json.loads(subprocess.run(["ip", "-j", "link", "show", veth], capture_output=True, text=True).stdout)[0]["address"] == HOST_MAC
    engine("rm", "-f", f"{name}-a", f"{name}-b")
    left = routes()
    assert not any(r["dst"] in (block, a["IPAddress"], b["IPAddress"]) for r in left)
    assert blocks(engine, name) == {}
    engine("network", "rm", name)


def test_one_host_restart_puts_back_what_is_missing(engine, subnet, name):
    engine("network", "create", "-d", "routed", "--subnet", subnet, "-o", "block-size=28", name)
    engine("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
    engine("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
    a, b = ep_on(engine, f"{name}-a", name), ep_on(engine, f"{name}-b", name)
    block = str(ipaddress.ip_network(f"{a['IPAddress']}/28", strict=False))
    engine.kill9()
    # while the engine is away someone removes the block's blackhole and a /32
    subprocess.run(["ip", "route", "del", "blackhole", block], check=True)
    subprocess.run(["ip", "route", "del", b["IPAddress"]], check=True)
    engine.start()
    host_routes = routes()
    assert any(r.get("type") == "blackhole" and r["dst"] == block for r in host_routes)
    assert any(r["dst"] == b["IPAddress"] and r.get("dev") == names.veth_name(b["EndpointID"]) for r in host_routes)
    assert pings(engine, f"{name}-a", b["IPAddress"])
    engine("rm", "-f", f"{name}-a", f"{name}-b")
    engine("network", "rm", name)


def test_a_full_block_spills_into_the_next_and_empty_blocks_are_given_back(engine, subnet, name):
    engine("network", "create", "-d", "routed", "--subnet", subnet, "-o", "block-size=30", name)
    for i in range(4):
        engine("run", "-d", "--name", f"{name}-{i}", "--network", name, "--", "sleep", "120")
    net = ipaddress.ip_network(subnet)
    first, second = (str(b) for b in list(net.subnets(new_prefix=30))[:2])
    ips = [ip_on(engine, f"{name}-{i}", name) for i in range(4)]
    assert [ipaddress.ip_address(ip) in ipaddress.ip_network(first) for ip in ips] == [True, True, True, False]
    assert ipaddress.ip_address(ips[3]) in ipaddress.ip_network(second)
    assert blocks(engine, name) == {first: "local", second: "local"}
    assert pings(engine, f"{name}-3", ips[0])
    engine("rm", "-f", f"{name}-3")  # the only address of the second block
    assert blocks(engine, name) == {first: "local"}
    assert not any(r["dst"] == second for r in routes())
    engine("rm", "-f", *(f"{name}-{i}" for i in range(3)))
    engine("network", "rm", name)


@pytest.mark.parametrize(
    "args,message",
    [
        (("-o", "colour=red"), "unknown routed driver option 'colour'"),
        (("-o", "block-size=40"), "block-size"),
        (("-o", "routing=bgp"), "routing=bgp needs a cluster"),
        (("--gateway", "{gw}"), "169.254.1.1"),
        (("--ip-range", "{rng}"), "--ip-range is not supported"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(engine, subnet, name, args, message):
    net = ipaddress.ip_network(subnet)
    args = tuple(a.format(gw=next(net.hosts()), rng=next(net.subnets(new_prefix=28))) for a in args)
    before = engine("network", "ls").stdout
    res = engine("network", "create", "-d", "routed", "--subnet", subnet, *args, name, check=False)
    assert res.returncode != 0 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert engine("network", "ls").stdout == before
    engine("network", "create", "-d", "routed", "--subnet", subnet, name)  # the subnet is still free
    engine("network", "rm", name)


def test_isolation_internal_egress_and_published_ports(engine, name, underlay):
    path, host_ip, client_ip = underlay
    engine("network", "create", "-d", "routed", f"{name}-a")
    engine("network", "create", "-d", "routed", f"{name}-b")
    engine("network", "create", "-d", "routed", "--internal", f"{name}-i")
    engine("network", "create", "-d", "routed", "-o", "nat-outgoing=false", f"{name}-n")
    engine("network", "create", f"{name}-br")
    box = {}
    for net in ("a", "b", "i", "n", "br"):
        box[net] = f"{name}-{net}1"
        engine("run", "-d", "--name", box[net], "--network", f"{name}-{net}", "--", "sleep", "120")
    for net in ("i", "b", "br"):  # a second container on each: the positive control of every "cannot reach"
        engine("run", "-d", "--name", f"{name}-{net}2", "--network", f"{name}-{net}", "--", "sleep", "120")
    hport = free_port()
    engine("run", "-d", "--name", f"{name}-web", "--network", f"{name}-a", "-p", f"{hport}:7000", "--", "python3", "-c", SERVE, "7000")
    ip = {k: ip_on(engine, v, f"{name}-{k}") for k, v in box.items()}
    web = ip_on(engine, f"{name}-web", f"{name}-a")
    # inside a network: yes; across routed networks and to/from a bridge network: no,
    # each next to a peer on the target's own network that does reach the same target
    assert pings(engine, box["a"], web) and pings(engine, f"{name}-web", ip["a"])
    assert pings(engine, f"{name}-b2", ip["b"]) and pings(engine, f"{name}-br2", ip["br"])
    assert not pings(engine, box["a"], ip["b"]) and not pings(engine, box["b"], ip["a"])
    assert not pings(engine, box["a"], ip["br"]) and not pings(engine, box["br"], ip["a"])
    # internal: its own pool only, no default route
    assert pings(engine, box["i"], ip_on(engine, f"{name}-i2", f"{name}-i"))
    assert engine("exec", box["i"], "ip", "-4", "route", "show", "default").stdout.strip() == ""
    assert pings(engine, f"{name}-i2", ip["i"])  # control: i1 answers its own network
    assert not pings(engine, box["i"], ip["a"]) and not pings(engine, box["a"], ip["i"])
    # egress: masqueraded to the host's address on the way out; with nat-outgoing=false the source stays
    srv = subprocess.Popen(["nsenter", f"--net={path}", sys.executable, "-c", SERVE, "7001"])
    try:
        seen = engine("exec", box["a"], "python3", "-c", ASK, client_ip, "7001").stdout.strip()
        assert seen == host_ip
        subprocess.run(["ip", "-n", path.rsplit("/", 1)[1], "route", "add", ip["n"], "via", host_ip], check=True)
        seen = engine("exec", box["n"], "python3", "-c", ASK, client_ip, "7001").stdout.strip()
        assert seen == ip["n"]
    finally:
        srv.kill()
        srv.wait()
    # a published port: from outside through the host's address, and from the host's localhost
    got = netns_exec(path, sys.executable, "-c", ASK, host_ip, str(hport), timeout=30)
    assert got.stdout.strip() == client_ip, got.stderr  # no NAT of the client on the way in
    got = subprocess.run([sys.executable, "-c", ASK, "127.0.0.1", str(hport)], capture_output=True, text=True, timeout=30)
    assert got.stdout.strip() in host_addresses(), got  # masqueraded to one of the host's own addresses
    engine("rm", "-f", *box.values(), f"{name}-i2", f"{name}-b2", f"{name}-br2", f"{name}-web")
    for net in ("a", "b", "i", "n", "br"):
        engine("network", "rm", f"{name}-{net}")


# ============================================================ many hosts =====

MODES = ["store", "bgp"]


@pytest.fixture
def lab2(tmp_path):
    """Two hosts of the test's own: no test depends on what another left in a shared lab."""
    lab = Lab(tmp_path, 2)
    yield lab
    lab.close()


def make_network(lab, name, mode, *extra):
    h1 = lab.hosts[0]
    h1("network", "create", "-d", "routed", "-o", f"routing={mode}", *extra, name)
    for h in lab.hosts[1:]:
        lab.wait(lambda: name in h("network", "ls").stdout)


def reach(lab, host, cname, ip) -> bool:
    return bool(lab.wait(lambda: pings(host, cname, ip), timeout=30, interval=0.2))


@pytest.mark.parametrize("mode", MODES)
def test_two_hosts_route_blocks_not_containers(lab2, name, subnet, mode):
    h1, h2 = lab2.hosts
    for h in (h1, h2):  # the lab's hosts have no default route: 169.254.1.1 must work anyway
        assert not any(r["dst"] == "default" for r in routes(h.path))
    make_network(lab2, name, mode, "-o", "block-size=28", "--subnet", subnet)
    view = h2.json("network", "inspect", name)[0]
    assert view["Scope"] == "global"
    h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
    h1("run", "-d", "--name", f"{name}-a2", "--network", name, "--", "sleep", "120")
    h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "120")
    a, b = ip_on(h1, f"{name}-a", name), ip_on(h2, f"{name}-b", name)
    assert reach(lab2, h1, f"{name}-a", b) and reach(lab2, h2, f"{name}-b", a)
    assert h2("exec", f"{name}-b", "getent", "hosts", f"{name}-a").stdout.split()[0] == a
    block_a = str(ipaddress.ip_network(f"{a}/28", strict=False))
    block_b = str(ipaddress.ip_network(f"{b}/28", strict=False))
    assert block_a != block_b and blocks(h2, name) == {block_a: h1.ip, block_b: h2.ip}
    # one route per remote block (two containers on h1: still one route on h2), a blackhole for its own
    on_h2 = routes(h2.path)
    proto = "78" if mode == "store" else "bird"
    to_a = [(r.get("gateway"), str(r.get("protocol"))) for r in on_h2 if r["dst"] == block_a]
    assert to_a == [(h1.ip, proto)]
    assert not any(r["dst"] in (a, ip_on(h1, f"{name}-a2", name)) for r in on_h2)
    assert any(r.get("type") == "blackhole" and r["dst"] == block_b for r in on_h2)
    if mode == "bgp":
        assert lab2.wait(lambda: state(h1, name)["Peers"] == [{"Address": h2.ip, "State": "Established"}], timeout=30)
    h1("rm", "-f", f"{name}-a", f"{name}-a2")
    lab2.wait(lambda: not any(r["dst"] == block_a for r in routes(h2.path)), timeout=30)
    h2("rm", "-f", f"{name}-b")
    h1("network", "rm", name)
    lab2.wait(lambda: name not in h2("network", "ls").stdout)


@pytest.mark.parametrize("mode", MODES)
def test_five_hosts(tmp_path, name, subnet, mode):
    lab = Lab(tmp_path, 5)
    try:
        make_network(lab, name, mode, "-o", "block-size=28", "--subnet", subnet)
        for i, h in enumerate(lab.hosts):
            h("run", "-d", "--name", f"{name}-{i}", "--network", name, "--", "sleep", "120")
        ips = [ip_on(h, f"{name}-{i}", name) for i, h in enumerate(lab.hosts)]
        assert len({str(ipaddress.ip_network(f"{ip}/28", strict=False)) for ip in ips}) == 5
        for i in range(1, 5):
            assert reach(lab, lab.hosts[0], f"{name}-0", ips[i])
        assert reach(lab, lab.hosts[4], f"{name}-4", ips[0])
        if mode == "bgp":
            want = [{"Address": h.ip, "State": "Established"} for h in lab.hosts[1:]]
            assert lab.wait(lambda: sorted(state(lab.hosts[0], name)["Peers"], key=lambda p: p["Address"]) == sorted(want, key=lambda p: p["Address"]), timeout=30)
    finally:
        lab.close()


def test_restart_resyncs_block_routes_from_the_store(tmp_path, name, subnet):
    lab = Lab(tmp_path, 2)
    try:
        h1, h2 = lab.hosts
        make_network(lab, name, "store", "-o", "block-size=28", "--subnet", subnet)
        far = str(ipaddress.ip_network(subnet).network_address + 200)
        far_block = str(ipaddress.ip_network(f"{far}/28", strict=False))
        h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
        h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
        a, b = ip_on(h1, f"{name}-a", name), ip_on(h2, f"{name}-b", name)
        old = str(ipaddress.ip_network(f"{b}/28", strict=False))
        assert reach(lab, h1, f"{name}-a", b)
        h1.engine.kill9()  # away while h2 claims a block and gives one back
        h2("run", "-d", "--name", f"{name}-c", "--network", name, "--ip", far, "--", "sleep", "300")
        h2("rm", "-f", f"{name}-b")
        assert any(r["dst"] == old for r in routes(h1.path))  # nobody told h1's kernel
        h1.engine.start()
        assert lab.wait(lambda: {r["dst"] for r in routes(h1.path) if r.get("gateway") == h2.ip} == {far_block})
        assert reach(lab, h1, f"{name}-a", far)
        assert reach(lab, h2, f"{name}-c", a)
    finally:
        lab.close()


def test_bird_outlives_an_engine_restart(tmp_path, name, subnet):
    lab = Lab(tmp_path, 2)
    try:
        h1, h2 = lab.hosts
        make_network(lab, name, "bgp", "-o", "block-size=28", "--subnet", subnet)
        h1("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "300")
        h2("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "300")
        b = ip_on(h2, f"{name}-b", name)
        assert reach(lab, h1, f"{name}-a", b)
        pidfile = f"{h1.engine.root}/routed/bird.pid"
        pid = open(pidfile).read().strip()
        block_b = str(ipaddress.ip_network(f"{b}/28", strict=False))
        h1.engine.kill9()
        # BIRD is not the engine's: the learned route stays while the engine is away
        assert [(r.get("gateway"), r.get("protocol")) for r in routes(h1.path) if r["dst"] == block_b] == [(h2.ip, "bird")]
        h1.engine.start()
        assert open(pidfile).read().strip() == pid  # the same BIRD, adopted
        assert lab.wait(lambda: state(h1, name)["Peers"] == [{"Address": h2.ip, "State": "Established"}], timeout=30)
        assert reach(lab, h1, f"{name}-a", b)
    finally:
        lab.close()


def test_routed_networks_are_isolated_across_hosts(lab2, name):
    h1, h2 = lab2.hosts
    make_network(lab2, f"{name}-x", "store", "-o", "block-size=28")
    make_network(lab2, f"{name}-y", "store", "-o", "block-size=28")
    h1("run", "-d", "--name", f"{name}-x1", "--network", f"{name}-x", "--", "sleep", "120")
    h2("run", "-d", "--name", f"{name}-x2", "--network", f"{name}-x", "--", "sleep", "120")
    h2("run", "-d", "--name", f"{name}-y2", "--network", f"{name}-y", "--", "sleep", "120")
    h1("run", "-d", "--name", f"{name}-y1", "--network", f"{name}-y", "--", "sleep", "120")
    x1, x2, y2 = ip_on(h1, f"{name}-x1", f"{name}-x"), ip_on(h2, f"{name}-x2", f"{name}-x"), ip_on(h2, f"{name}-y2", f"{name}-y")
    # controls, same networks across hosts: x1 and y2 are reachable, from h1 and from h2
    assert reach(lab2, h1, f"{name}-x1", x2) and reach(lab2, h2, f"{name}-x2", x1)
    assert reach(lab2, h1, f"{name}-y1", y2)
    lab2.wait(lambda: any(r["dst"].startswith(y2.rsplit(".", 1)[0]) for r in routes(h1.path)))  # h1 knows y's block
    assert not pings(h1, f"{name}-x1", y2) and not pings(h2, f"{name}-y2", x1)
    h1("rm", "-f", f"{name}-x1", f"{name}-y1")
    h2("rm", "-f", f"{name}-x2", f"{name}-y2")
    h1("network", "rm", f"{name}-x")
    h1("network", "rm", f"{name}-y")
