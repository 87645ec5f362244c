"""``netcore-cni`` exec'd as a CNI runtime does: env + stdin in, result or CNI error out.

A private engine on the host; each "container" is a netns the test makes (``nct-c...``),
as a runtime would make it before ADD. Every call goes through the installed
executable, so the console script, its imports and its error output are what is tested.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_engine import Engine, engine_links, netns_exec

pytestmark = pytest.mark.root

CNI = str(Path(sys.executable).parent / "netcore-cni")


class Netns:
    """A runtime's container netns: made with lo up, deleted by the test."""

    def __init__(self) -> None:
        self.name = f"nct-c{secrets.token_hex(4)}"
        self.path = f"/run/netns/{self.name}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)

    def delete(self) -> None:
        if os.path.exists(self.path):
            subprocess.run(["ip", "netns", "del", self.name], check=True)

    def addresses(self, ifname: str = "eth0") -> list[str]:
        out = subprocess.run(["ip", "-n", self.name, "-j", "addr", "show", "dev", ifname], capture_output=True, text=True)
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(out.stdout or "[]") for a in link["addr_info"] if a["family"] == "inet"]


@pytest.fixture
def netns():
    made: list[Netns] = []

    def make() -> Netns:
        made.append(Netns())
        return made[-1]

    yield make
    for ns in made:
        ns.delete()


def conf(engine: Engine, network: str, version: str = "1.0.0", **extra) -> dict:
    """The plugin's request config as libcni builds it from ``network cni-config``'s conflist."""
    lst = json.loads(engine("network", "cni-config", "--cni-version", version, network).stdout)
    return {**lst["plugins"][0], "cniVersion": lst["cniVersion"], "name": lst["name"], **extra}


def cni(command: str, config: dict | str, cid: str = "", ifname: str = "eth0", netns: str = "", args: str = "") -> tuple[int, dict, str]:
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": ifname,
           "CNI_NETNS": netns, "CNI_PATH": os.path.dirname(CNI)}
    if args:
        env["CNI_ARGS"] = args
    stdin = config if isinstance(config, str) else json.dumps(config)
    proc = subprocess.run([CNI], input=stdin, env={k: v for k, v in env.items() if v}, capture_output=True, text=True, timeout=60)
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    assert "Traceback" not in proc.stderr
    return proc.returncode, out, proc.stderr


def eventually(cond, timeout: float = 10.0) -> bool:
    """DEL hands the veth's deletion to the engine's worker: it goes soon after DEL answers."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def containers(engine: Engine, network: str) -> dict:
    return engine.json("network", "inspect", network)[0]["Containers"]


@pytest.fixture
def net(engine: Engine, subnet: str, name: str) -> str:
    engine("network", "create", "--subnet", subnet, name)
    return name


def test_cni_config_prints_a_conflist_podman_accepts(engine: Engine, net: str) -> None:
    lst = json.loads(engine("network", "cni-config", net).stdout)
    assert lst["cniVersion"] == "1.0.0" and lst["name"] == net
    [plugin] = lst["plugins"]
    assert plugin == {"type": "netcore-cni", "network": net, "socket": engine.socket,
                      "capabilities": {"portMappings": True, "aliases": True}}
    assert json.loads(engine("network", "cni-config", "--cni-version", "0.4.0", net).stdout)["cniVersion"] == "0.4.0"
    bad = engine("network", "cni-config", "--cni-version", "2.0.0", net, check=False)
    assert bad.returncode == 125 and "2.0.0" in bad.stderr  # a usage error: Docker's 125
    missing = engine("network", "cni-config", "nosuchnet", check=False)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0 and "nosuchnet" in missing.stderr


def test_add_check_del(engine: Engine, net: str, subnet: str, netns) -> None:
    ns = netns()
    cid = secrets.token_hex(32)
    rc, res, err = cni("ADD", conf(engine, net), cid, netns=ns.path, args="IgnoreUnknown=1;K8S_POD_NAME=web")
    assert rc == 0, res
    assert res["cniVersion"] == "1.0.0"
    # as the bridge plugin: the bridge and the host's veth end (no sandbox), then the container's
    bridge, veth, itf = res["interfaces"]
    assert itf["name"] == "eth0" and itf["sandbox"] == ns.path and len(itf["mac"].split(":")) == 6
    assert {bridge["name"], veth["name"]} <= engine_links(engine) and bridge["name"] != veth["name"] and "sandbox" not in bridge and "sandbox" not in veth
    [ip] = res["ips"]
    assert "version" not in ip and ip["interface"] == 2
    assert ns.addresses() == [ip["address"]]
    assert ip["address"].rsplit(".", 1)[0] == subnet.rsplit(".", 1)[0] and ip["gateway"]
    assert res["routes"] == [{"dst": "0.0.0.0/0", "gw": ip["gateway"]}]
    assert res["dns"] == {"nameservers": ["127.0.0.11"]}
    [(key, ep)] = containers(engine, net).items()
    assert key == cid and ep["Name"] == "web" and ep["IPv4Address"] == ip["address"]
    # the embedded DNS answers in the runtime's netns: the pod name and the short id
    for qname in ("web", cid[:12]):
        out = netns_exec(ns.path, "busybox", "nslookup", qname, "127.0.0.11", timeout=10)
        assert ip["address"].split("/")[0] in out.stdout, out.stdout + out.stderr
    links = engine_links(engine)

    check = conf(engine, net, prevResult=res)
    assert cni("CHECK", check, cid, netns=ns.path)[0] == 0

    # a second ADD for the same container and interface: CNI's error, nothing changed
    rc, again, _ = cni("ADD", conf(engine, net), cid, netns=ns.path)
    assert rc != 0 and set(again) == {"cniVersion", "code", "msg", "details"} and "already has interface eth0" in again["msg"]
    assert list(containers(engine, net)) == [cid] and ns.addresses() == [ip["address"]] and engine_links(engine) == links

    # DEL answers once the records are gone; the veth goes right after, on the engine's worker
    assert cni("DEL", conf(engine, net, prevResult=res), cid, netns=ns.path)[0] == 0
    assert containers(engine, net) == {}
    assert eventually(lambda: ns.addresses() == [] and len(engine_links(engine)) == len(links) - 1)  # the bridge stays
    assert cni("DEL", conf(engine, net), cid, netns=ns.path)[0] == 0  # DEL twice
    rc, gone, _ = cni("CHECK", check, cid, netns=ns.path)
    assert rc != 0 and gone["code"] == 3


def test_add_right_after_del_of_the_same_interface(engine: Engine, net: str, netns) -> None:
    """The ADD that follows a DEL at once (a runtime's retry) waits for the old eth0 to go."""
    ns, cid = netns(), secrets.token_hex(8)
    links = engine_links(engine)
    for _ in range(3):
        rc, res, _ = cni("ADD", conf(engine, net), cid, netns=ns.path)
        assert rc == 0, res
        assert ns.addresses() == [res["ips"][0]["address"]] and len(engine_links(engine)) == len(links) + 1
        assert cni("DEL", conf(engine, net), cid, netns=ns.path)[0] == 0
    assert containers(engine, net) == {}
    assert eventually(lambda: ns.addresses() == [] and engine_links(engine) == links)


def test_second_interface_and_older_versions(engine: Engine, net: str, subnet: str, netns, name: str) -> None:
    """CNI 0.4.0: ``ips[].version``; a second network on ``eth1`` of the same container."""
    from reserve import free_subnet

    engine("network", "create", "--subnet", free_subnet(), name + "b")
    ns, cid = netns(), secrets.token_hex(8)
    rc, res, _ = cni("ADD", conf(engine, net, "0.4.0"), cid, netns=ns.path)
    assert rc == 0 and res["cniVersion"] == "0.4.0" and res["ips"][0]["version"] == "4"
    rc, res2, _ = cni("ADD", conf(engine, name + "b", "0.4.0"), cid, "eth1", netns=ns.path)
    assert rc == 0 and res2["interfaces"][-1]["name"] == "eth1" and ns.addresses("eth1") == [res2["ips"][0]["address"]]
    assert res2["ips"][0]["interface"] == len(res2["interfaces"]) - 1
    assert ns.addresses("eth0") == [res["ips"][0]["address"]]
    # 0.3.x knows no CHECK
    rc, err, _ = cni("CHECK", conf(engine, net, "0.3.1", prevResult=res), cid, netns=ns.path)
    assert rc != 0 and err["code"] == 1
    assert cni("DEL", conf(engine, name + "b", "0.4.0"), cid, "eth1", netns=ns.path)[0] == 0
    assert containers(engine, name + "b") == {} and list(containers(engine, net)) == [cid]
    assert cni("DEL", conf(engine, net, "0.4.0"), cid, netns=ns.path)[0] == 0
    assert containers(engine, net) == {}
    engine("network", "rm", name + "b")


def test_bad_input_is_one_cni_error_and_leaves_nothing(engine: Engine, net: str, netns) -> None:
    ns = netns()
    links = engine_links(engine)
    good = conf(engine, net)
    cases = [
        ("no network", {k: v for k, v in good.items() if k != "network"}, {}, 7, "names no netcore network"),
        ("no such network", {**good, "network": "nosuchnet"}, {}, 7, "nosuchnet"),
        ("no such netns", good, {"netns": "/run/netns/nct-nosuch"}, 4, "/run/netns/nct-nosuch"),
        ("engine away", {**good, "socket": "/run/nct-nosuch.sock"}, {}, 11, "/run/nct-nosuch.sock"),
        ("no container id", good, {"cid": ""}, 4, "CNI_CONTAINERID"),
        ("bad ifname", good, {"ifname": "a-very-long-ifname0"}, 4, "CNI_IFNAME"),
        ("not JSON", "{nope", {}, 6, "not JSON"),
        ("unknown version", {**good, "cniVersion": "0.2.0"}, {}, 1, "0.2.0"),
    ]
    cases += [  # libcni's LoadArgs: unknown CNI_ARGS keys only with IgnoreUnknown=1
        ("unknown arg", good, {"args": "K8S_POD_NAME=web;FOO=bar"}, 4, "FOO"),
        ("not a pair", good, {"args": "IgnoreUnknown=1;FOO"}, 4, "FOO"),
    ]
    for what, config, kw, code, text in cases:
        call = {"cid": secrets.token_hex(8), "netns": ns.path, "ifname": "eth0", "args": "", **kw}
        rc, err, _ = cni("ADD", config, call["cid"], call["ifname"], netns=call["netns"], args=call["args"])
        assert rc != 0, what
        assert set(err) == {"cniVersion", "code", "msg", "details"}, (what, err)
        assert err["code"] == code and text in err["msg"] and "\n" not in err["msg"], (what, err)
    assert containers(engine, net) == {} and engine_links(engine) == links and ns.addresses() == []
    # VERSION needs nothing but stdin
    rc, ver, _ = cni("VERSION", {"cniVersion": "1.1.0"})
    assert rc == 0 and ver == {"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}
    rc, err, _ = cni("NOPE", good, "x")
    assert rc != 0 and err["code"] == 4


def test_del_after_the_netns_is_gone(engine: Engine, net: str, netns) -> None:
    ns, cid = netns(), secrets.token_hex(8)
    links = engine_links(engine)
    assert cni("ADD", conf(engine, net), cid, netns=ns.path)[0] == 0
    ns.delete()
    rc, out, _ = cni("DEL", conf(engine, net), cid, netns=ns.path)
    assert rc == 0 and out == {}
    assert containers(engine, net) == {} and eventually(lambda: engine_links(engine) == links)
    # and the same container id can be added again in a new netns
    ns2 = netns()
    rc, res, _ = cni("ADD", conf(engine, net), cid, netns=ns2.path)
    assert rc == 0 and ns2.addresses() == [res["ips"][0]["address"]]
    assert cni("DEL", conf(engine, net), cid, netns=ns2.path)[0] == 0


def test_stale_attachment_is_replaced_when_its_netns_is_gone(engine: Engine, net: str, netns) -> None:
    """A DEL that never came (runtime crash): the next ADD of that id in a new netns starts afresh."""
    ns, cid = netns(), secrets.token_hex(8)
    assert cni("ADD", conf(engine, net), cid, netns=ns.path)[0] == 0
    ns.delete()
    ns2 = netns()
    rc, res, _ = cni("ADD", conf(engine, net), cid, netns=ns2.path)
    assert rc == 0 and len(containers(engine, net)) == 1
    assert cni("DEL", conf(engine, net), cid, netns=ns2.path)[0] == 0
    assert containers(engine, net) == {}


def test_del_with_the_engine_stopped(engine: Engine, net: str, netns) -> None:
    """DEL succeeds (logged on stderr); the engine reaps the attachment of the deleted netns at its start."""
    ns, cid = netns(), secrets.token_hex(8)
    links = engine_links(engine)
    assert cni("ADD", conf(engine, net), cid, netns=ns.path)[0] == 0
    config = conf(engine, net)
    engine.kill9()
    rc, out, err = cni("DEL", config, cid, netns=ns.path)
    assert rc == 0 and out == {} and "reaps it when it starts again" in err
    ns.delete()
    engine.start()
    assert containers(engine, net) == {} and engine_links(engine) == links


def test_engine_restart_keeps_cni_attachments(engine: Engine, net: str, netns) -> None:
    """The engine adopts its own containers at start; a CNI attachment is not one of them and
    stays, its port mapping too, and the host port stays the runtime's to hold."""
    import socket

    from reserve import free_port

    ns, cid, port = netns(), secrets.token_hex(8), free_port()
    mapping = {"runtimeConfig": {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]}}
    rc, res, _ = cni("ADD", conf(engine, net, **mapping), cid, netns=ns.path)
    assert rc == 0
    engine.kill9()
    engine.start()
    assert list(containers(engine, net)) == [cid] and ns.addresses() == [res["ips"][0]["address"]]
    with socket.socket() as runtime:  # as podman's conmon binds it again
        runtime.bind(("0.0.0.0", port))
    assert str(port) in subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert cni("CHECK", conf(engine, net, prevResult=res), cid, netns=ns.path)[0] == 0
    assert cni("DEL", conf(engine, net), cid, netns=ns.path)[0] == 0
    assert containers(engine, net) == {}


def test_status_and_gc(engine: Engine, net: str, netns) -> None:
    keep, drop = netns(), netns()
    kid, did = secrets.token_hex(8), secrets.token_hex(8)
    assert cni("ADD", conf(engine, net, "1.1.0"), kid, netns=keep.path)[0] == 0
    assert cni("ADD", conf(engine, net, "1.1.0"), did, netns=drop.path)[0] == 0
    assert cni("STATUS", conf(engine, net, "1.1.0")) == (0, {}, "")
    rc, err, _ = cni("STATUS", {**conf(engine, net, "1.1.0"), "network": "nosuchnet"})
    assert rc != 0 and err["code"] == 51 and "nosuchnet" in err["msg"]  # 51: the network is not there
    rc, err, _ = cni("STATUS", {**conf(engine, net, "1.1.0"), "socket": "/run/nct-nosuch.sock"})
    assert rc != 0 and err["code"] == 50
    gc = conf(engine, net, "1.1.0", **{"cni.dev/valid-attachments": [{"containerID": kid, "ifname": "eth0"}]})
    assert cni("GC", gc)[0] == 0
    assert list(containers(engine, net)) == [kid] and drop.addresses() == [] and keep.addresses() != []
    assert cni("DEL", conf(engine, net, "1.1.0"), kid, netns=keep.path)[0] == 0
    assert containers(engine, net) == {}


def test_static_ip_and_aliases(engine: Engine, net: str, subnet: str, netns) -> None:
    """``IP=`` in CNI_ARGS (podman ``--ip``) or the ``ips`` capability; the ``aliases`` capability as DNS names."""
    base = subnet.rsplit(".", 1)[0]
    ns1, ns2 = netns(), netns()
    c1, c2 = secrets.token_hex(8), secrets.token_hex(8)
    rc, res, _ = cni("ADD", conf(engine, net), c1, netns=ns1.path, args=f"IgnoreUnknown=1;IP={base}.50")
    assert rc == 0 and res["ips"][0]["address"].startswith(f"{base}.50/")
    config = conf(engine, net, runtimeConfig={"ips": [f"{base}.51/24"], "aliases": {net: ["db", "store"]}})
    rc, res, _ = cni("ADD", config, c2, netns=ns2.path)
    assert rc == 0 and res["ips"][0]["address"].startswith(f"{base}.51/")
    out = netns_exec(ns1.path, "busybox", "nslookup", "store", "127.0.0.11", timeout=10)
    assert f"{base}.51" in out.stdout, out.stdout + out.stderr
    # an address taken: CNI's error, nothing made
    ns3 = netns()
    rc, err, _ = cni("ADD", conf(engine, net), secrets.token_hex(8), netns=ns3.path, args=f"IP={base}.50")
    assert rc != 0 and err["code"] == 100 and ns3.addresses() == []
    for cid, ns in ((c1, ns1), (c2, ns2)):
        assert cni("DEL", conf(engine, net), cid, netns=ns.path)[0] == 0
    assert containers(engine, net) == {}


def test_an_interface_name_taken_in_the_netns_fails_and_leaves_nothing(engine: Engine, net: str, netns) -> None:
    ns = netns()
    subprocess.run(["ip", "-n", ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
    links = engine_links(engine)
    rc, err, _ = cni("ADD", conf(engine, net), secrets.token_hex(8), netns=ns.path)
    assert rc != 0 and set(err) == {"cniVersion", "code", "msg", "details"} and "\n" not in err["msg"]
    assert containers(engine, net) == {} and engine_links(engine) == links


def test_the_engine_stops_only_after_the_work_dels_handed_off(engine: Engine, net: str, netns) -> None:
    """One GC drops eight attachments (eight veths handed to the worker), then SIGTERM at
    once: once the engine has exited no veth is left, although every netns still exists
    (the kernel reaps nothing here). (On this machine the rest of the stop outlasts the
    worker even without its wait, so this guards the result, not the wait itself.)"""
    import signal

    spaces = [(netns(), secrets.token_hex(8)) for _ in range(8)]
    links = engine_links(engine)
    for ns, cid in spaces:
        assert cni("ADD", conf(engine, net, "1.1.0"), cid, netns=ns.path)[0] == 0
    assert len(engine_links(engine)) == len(links) + len(spaces)
    assert cni("GC", conf(engine, net, "1.1.0", **{"cni.dev/valid-attachments": []}))[0] == 0
    engine.proc.send_signal(signal.SIGTERM)
    assert engine.proc.wait(timeout=30) == 0
    engine.proc = None
    assert engine_links(engine) == links and all(ns.addresses() == [] for ns, _ in spaces)
    engine.start()
    assert containers(engine, net) == {}


SERVE = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
"""


def _get(port: int) -> str:
    """What answers on 127.0.0.1:port from the host ('' when nothing does)."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(16).decode()
    except OSError:
        return ""


def test_each_add_publishes_its_own_port_mappings(engine: Engine, net: str, netns, name: str) -> None:
    """portMappings on every ADD, DNAT to that attachment's address; its DEL takes them away."""
    from reserve import free_port, free_subnet

    engine("network", "create", "--subnet", free_subnet(), name + "b")
    ns, cid = netns(), secrets.token_hex(8)
    p0, p1 = free_port(), free_port()
    servers = [subprocess.Popen(["nsenter", f"--net={ns.path}", sys.executable, "-c", SERVE, str(port)]) for port in (8080, 8081)]
    try:
        pm = lambda host, cont: {"runtimeConfig": {"portMappings": [{"hostPort": host, "containerPort": cont, "protocol": "tcp"}]}}  # noqa: E731
        assert cni("ADD", conf(engine, net, **pm(p0, 8080)), cid, netns=ns.path)[0] == 0
        rc, res, _ = cni("ADD", conf(engine, name + "b", **pm(p1, 8081)), cid, "eth1", netns=ns.path)
        assert rc == 0, res
        assert eventually(lambda: _get(p0) == "8080") and eventually(lambda: _get(p1) == "8081")
        # the second mapping goes to eth1's address, not to the default route's eth0
        eth1 = res["ips"][0]["address"].split("/")[0]
        assert eth1 in subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
        assert cni("DEL", conf(engine, name + "b"), cid, "eth1", netns=ns.path)[0] == 0
        assert _get(p1) == "" and _get(p0) == "8080"
        # a host port someone holds: that ADD fails whole, the container's other interface stays
        import socket

        with socket.socket() as held:
            held.bind(("0.0.0.0", p1))
            held.listen()
            links = engine_links(engine)
            rc, err, _ = cni("ADD", conf(engine, name + "b", **pm(p1, 8081)), cid, "eth1", netns=ns.path)
            assert rc != 0 and str(p1) in err["msg"] and "\n" not in err["msg"], err
        assert containers(engine, name + "b") == {} and ns.addresses("eth1") == [] and list(containers(engine, net)) == [cid]
        assert eventually(lambda: engine_links(engine) == links) and _get(p0) == "8080"
        assert cni("DEL", conf(engine, net), cid, netns=ns.path)[0] == 0
        assert _get(p0) == ""
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
    assert containers(engine, net) == {} and containers(engine, name + "b") == {}
    engine("network", "rm", name + "b")
