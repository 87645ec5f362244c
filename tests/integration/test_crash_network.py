"""kill -9 at every step boundary of `network create`, `network connect`, `network disconnect` and `network rm`.

The engine runs with ``NETCORE_TEST_PAUSE_STEP=<step>`` (netcore/steps.py): it stops
just before that step and writes a marker; the test kills it there with SIGKILL and
starts a new engine on the same root. That engine must leave the store, IPAM and the
kernel consistent with each other (``assert_consistent``: links, nft chains, set and
map elements, pools and addresses, no pending intent), and the very same command,
with the same ``--subnet`` / ``--ip``, must then succeed (issue 12, item 5). A create or
connect that did not finish never happened; a disconnect is finished; a network rm is
rolled back (its network is whole again, and rm then succeeds).
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from cli_engine import NETCORE, Engine, free_port, free_subnet
from test_cli_ports import ASK, SERVE

pytestmark = pytest.mark.root

CREATE_STEPS = ["network.ipam", "network.driver", "bridge.device", "bridge.gateway", "bridge.forwarding", "bridge.firewall", "network.store"]
CONNECT_STEPS = ["endpoint.ipam", "endpoint.create", "endpoint.join", "endpoint.configure", "endpoint.gateway", "endpoint.ports", "endpoint.store"]
RM_STEPS = ["network.delete", "bridge.firewall.undo", "bridge.device.undo", "network.release"]
DISCONNECT_STEPS = ["endpoint.unpublish", "endpoint.leave", "endpoint.delete", "endpoint.release", "endpoint.forget"]


def store_rows(eng: Engine, kind: str) -> list[dict]:
    db = sqlite3.connect(f"file:{eng.root}/netcore.db?mode=ro", uri=True)
    try:
        return [json.loads(r[0]) for r in db.execute("SELECT data FROM objects WHERE kind=?", (kind,))]
    finally:
        db.close()


def assert_consistent(eng: Engine) -> None:
    """Store, IPAM and kernel agree: nothing in one that the other does not know."""
    from netcore.names import engine_tag, table_name

    tag = engine_tag(eng.root)
    nets = {n["id"]: n for n in store_rows(eng, "network")}
    eps = {e["id"]: e for e in store_rows(eng, "endpoint")}
    bridged = {i for i, n in nets.items() if n["driver"] == "bridge"}
    assert store_rows(eng, "intent") == []
    # links: exactly the bridges of the bridge networks and the veths of their endpoints
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    ours = {l["ifalias"].split(":")[2]: l["ifname"] for l in links if l.get("ifalias", "").startswith(f"netcore:{tag}:")}
    assert set(ours) == bridged | {i for i, e in eps.items() if e["network_id"] in bridged}
    # nft: a chain triple per bridge network, set/map elements of exactly those bridges
    table = json.loads(subprocess.run(["nft", "-j", "list", "table", "inet", table_name(eng.root)], capture_output=True, text=True, check=True).stdout)
    objs = table["nftables"]
    chains = {o["chain"]["name"] for o in objs if "chain" in o and o["chain"]["name"].startswith("net-")}
    assert chains == {f"net-{i[:12]}-{k}" for i in bridged for k in ("in", "out", "post")}
    sets = {o.get("set", o.get("map", {})).get("name"): o.get("set", o.get("map", {})).get("elem") or [] for o in objs if "set" in o or "map" in o}
    assert set(sets["net_ifs"]) == {ours[i] for i in bridged}
    assert {e[0] for e in sets["fwd_in"]} == {ours[i] for i in bridged}
    published = {(b["proto"], b["host_port"]): e["address"].split("/")[0] for e in eps.values() for b in e.get("ports") or ()}
    assert {tuple(k["concat"]): v for k, v in sets["any_addr"]} == published
    # IPAM: one pool per network with addresses, holding its gateway and its endpoints' addresses
    pools = {p["pool_id"]: p for p in store_rows(eng, "pool")}
    assert {p["network_id"] for p in pools.values()} == {i for i, n in nets.items() if n.get("pool_id")}
    held: dict[str, set[str]] = {}
    db = sqlite3.connect(f"file:{eng.root}/netcore.db?mode=ro", uri=True)
    try:
        for parent, data in db.execute("SELECT parent, data FROM objects WHERE kind='address'"):
            held.setdefault(parent, set()).add(json.loads(data)["address"])
    finally:
        db.close()
    for i, n in nets.items():
        if n.get("pool_id"):
            want = {n["gateway"]} | {e["address"].split("/")[0] for e in eps.values() if e["network_id"] == i and e.get("address")}
            assert held.pop(n["pool_id"], set()) == want, n["name"]
    assert held == {}  # no address in a pool without a network


def killed_at(eng: Engine, tmp: Path, step: str, *cmd: str) -> None:
    """Run ``cmd`` on an engine paused at ``step``, kill -9 the engine there, start a fresh one."""
    marker = tmp / "paused"
    marker.unlink(missing_ok=True)
    eng.kill9()
    eng.env.update(NETCORE_TEST_PAUSE_STEP=step, NETCORE_TEST_PAUSE_FILE=str(marker))
    try:
        eng.start()
        client = subprocess.Popen([*NETCORE, *cmd], env=eng.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert client.poll() is None, f"{' '.join(cmd)} finished without reaching {step}"
            assert time.monotonic() < deadline, f"the engine never paused at {step}"
            time.sleep(0.01)
        assert marker.read_text().split()[0] == step.split("@")[0]
        eng.kill9()
        client.wait(timeout=30)
    finally:
        del eng.env["NETCORE_TEST_PAUSE_STEP"], eng.env["NETCORE_TEST_PAUSE_FILE"]
    eng.start()


def bridge_count(eng: Engine) -> int:
    return sum(1 for n in store_rows(eng, "network") if n["driver"] == "bridge")


def nth(eng: Engine, step: str) -> str:
    """The pause switch for the command's own ``step``: an engine's start restores each bridge
    network's rules through ``bridge.firewall`` first."""
    return f"{step}@{bridge_count(eng) + 1}" if step == "bridge.firewall" else step


@pytest.fixture
def eng(tmp_path: Path):
    e = Engine(tmp_path).start()
    yield e
    e.stop()


def test_kill_during_network_create(eng, tmp_path, name):
    subnet = free_subnet()
    assert_consistent(eng)  # control: a fresh engine
    for step in CREATE_STEPS:
        killed_at(eng, tmp_path, nth(eng, step), "network", "create", "--subnet", subnet, name)
        assert_consistent(eng)
        assert name not in eng("network", "ls").stdout, step  # a create that never finished never happened
        eng("network", "create", "--subnet", subnet, name)  # the same subnet is free again
        assert_consistent(eng)
        eng("network", "rm", name)


def test_kill_during_network_connect(eng, tmp_path, name):
    port, other = free_port(), free_subnet()
    eng("network", "create", name + "-base")
    eng("network", "create", "--subnet", other, name)
    eng("run", "-d", "--name", name, "--network", name + "-base", "-p", f"{port}:8000", "--", "python3", "-c", SERVE, "8000")
    ip = str(ipaddress.ip_network(other).network_address + 7)
    base_gw = eng.json("network", "inspect", name + "-base")[0]["IPAM"]["Config"][0]["Gateway"]
    assert_consistent(eng)
    for step in CONNECT_STEPS:
        # --gw-priority: the new network takes the default route and the published port, so every step runs
        killed_at(eng, tmp_path, step, "network", "connect", "--ip", ip, "--gw-priority", "10", name, name)
        assert_consistent(eng)
        nets = eng.json("inspect", name)[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {name + "-base"}, step
        route = eng("exec", name, "ip", "route", "show", "default").stdout
        assert f"via {base_gw}" in route, (step, route)  # the default route is back on the first network
        assert subprocess.run(["python3", "-c", ASK, "127.0.0.1", str(port), "tcp"], capture_output=True, text=True, timeout=30).stdout.startswith("tcp ")
        eng("network", "connect", "--ip", ip, "--gw-priority", "10", name, name)  # the same address is free again
        assert_consistent(eng)
        eng("network", "disconnect", name, name)
    eng("rm", "-f", name)


def test_kill_during_network_disconnect(eng, tmp_path, name):
    port, other = free_port(), free_subnet()
    eng("network", "create", name + "-base")
    eng("network", "create", "--subnet", other, name)
    eng("run", "-d", "--name", name, "--network", name + "-base", "-p", f"{port}:8000", "--", "python3", "-c", SERVE, "8000")
    ip = str(ipaddress.ip_network(other).network_address + 9)
    base_gw = eng.json("network", "inspect", name + "-base")[0]["IPAM"]["Config"][0]["Gateway"]
    for step in DISCONNECT_STEPS:
        # it holds the default route and the published port: the disconnect hands both back
        eng("network", "connect", "--ip", ip, "--gw-priority", "10", name, name)
        killed_at(eng, tmp_path, step, "network", "disconnect", name, name)
        assert_consistent(eng)
        assert set(eng.json("inspect", name)[0]["NetworkSettings"]["Networks"]) == {name + "-base"}, step  # finished
        route = eng("exec", name, "ip", "route", "show", "default").stdout
        assert f"via {base_gw}" in route, (step, route)
        assert subprocess.run(["python3", "-c", ASK, "127.0.0.1", str(port), "tcp"], capture_output=True, text=True, timeout=30).stdout.startswith("tcp ")
    eng("network", "connect", "--ip", ip, name, name)  # its address is free again
    eng("rm", "-f", name)


def test_kill_during_network_rm(eng, tmp_path, name):
    subnet = free_subnet()
    eng("network", "create", "--subnet", subnet, name)
    for step in RM_STEPS:
        killed_at(eng, tmp_path, step, "network", "rm", name)
        assert_consistent(eng)
        # a remove that never finished is rolled back: the network is whole again (its bridge and rules too)
        assert eng.json("network", "inspect", name)[0]["IPAM"]["Config"][0]["Subnet"] == subnet, step
        eng("network", "rm", name)  # and the same command succeeds
        assert_consistent(eng)
        eng("network", "create", "--subnet", subnet, name)
