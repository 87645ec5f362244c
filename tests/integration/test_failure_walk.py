"""A failure at any step of a command leaves nothing behind: every step, of every driver.

The steps are not listed here: the engine reports every failable step a command crosses
(``NETCORE_TEST_STEP_LOG``, netcore/steps.py), so a step a driver adds is walked too.
For each one, an engine started with ``NETCORE_TEST_FAIL_STEP=<step>`` must refuse the
command in one line and leave the kernel and the store exactly as they were (links and
netns of this engine, routes through them or into the test's subnet, its nftables table,
every store row, IPAM included); then the very same command, with the same ``--subnet``
and ``--ip``, succeeds on an engine without the switch (a leaked pool, address or name
would be in its way). Teardowns (rm, disconnect) never fail on purpose; their step
boundaries are walked with kill -9 in test_crash_network.py and test_engine_crash.py.

The overlay driver needs a cluster: its walk runs on a 2-host lab (multihost.py), on
the first host's engine, with a container of the second host on the network (so the
remote peers are programmed too), and compares the cluster store (etcd) as well.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import sqlite3
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from cli_engine import Engine, free_subnet
from multihost import Lab
from netcore.names import engine_tag, table_name

pytestmark = pytest.mark.root


def _strip_handles(obj):
    if isinstance(obj, dict):
        return {k: _strip_handles(v) for k, v in obj.items() if k != "handle"}
    if isinstance(obj, list):
        return [_strip_handles(v) for v in obj]
    return obj


def snapshot(eng: Engine, subnets: list[str], ns: str | None = None) -> dict:
    """This engine's links, netns, routes, nftables table and store rows (``ns``: the engine runs in that netns)."""
    tag = engine_tag(eng.root)
    inside = ["ip", "netns", "exec", ns] if ns else []

    def out(*argv: str) -> str:
        return subprocess.run([*inside, *argv], capture_output=True, text=True).stdout

    links = json.loads(out("ip", "-j", "link"))
    ours = sorted(l["ifname"] for l in links if l.get("ifalias", "").startswith(f"netcore:{tag}:"))
    netns = sorted(n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
                   if n.startswith(f"nc-{tag}-"))
    nets = [ipaddress.ip_network(s) for s in subnets]
    routes = json.loads(out("ip", "-j", "-4", "route", "show", "table", "all"))
    mine = sorted(json.dumps({k: x for k, x in r.items() if k != "flags"}, sort_keys=True) for r in routes  # linkdown: carrier lags
                  if r.get("dev") in ours or (r.get("dst", "default") not in ("default",) and "/" in r.get("dst", "")
                                             and any(ipaddress.ip_network(r["dst"], strict=False).overlaps(n) for n in nets)))
    table = out("nft", "-j", "list", "table", "inet", table_name(eng.root))
    db = sqlite3.connect(f"file:{eng.root}/netcore.db?mode=ro", uri=True)
    try:
        rows = sorted(db.execute("SELECT kind, id, data FROM objects"))
    finally:
        db.close()
    return {"links": ours, "netns": netns, "routes": mine, "nft": _strip_handles(json.loads(table or "{}")), "store": rows}


def etcd_rows(url: str) -> list[tuple[str, str]]:
    """Every key and value in the cluster store but the hosts' liveness records (leases tick)."""
    host = url.removeprefix("etcd://")
    body = json.dumps({"key": base64.b64encode(b"\0").decode(), "range_end": base64.b64encode(b"\0").decode()}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}/v3/kv/range", data=body), timeout=10) as resp:
        kvs = json.load(resp).get("kvs", [])
    rows = [(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")).decode()) for kv in kvs]
    return sorted((k, v) for k, v in rows if "/node/" not in k)


@dataclass
class Scenario:
    name: str
    prepare: Callable[[Engine, dict], None]  # the state the command starts from
    command: Callable[[dict], list[str]]
    undo: Callable[[Engine, dict], None]  # back to the prepared state after a success


def _network(driver: str):
    def prepare(eng: Engine, v: dict) -> None:
        return None

    def command(v: dict) -> list[str]:
        return ["network", "create", "-d", v["driver"], "--subnet", v["subnet"], v["net"]]

    def undo(eng: Engine, v: dict) -> None:
        eng("network", "rm", v["net"])

    return Scenario(f"network-create-{driver}", prepare, command, undo)


def _run(driver: str):
    def prepare(eng: Engine, v: dict) -> None:
        eng("network", "create", "-d", v["driver"], "--subnet", v["subnet"], v["net"])

    def command(v: dict) -> list[str]:
        return ["run", "-d", "--name", v["ctr"], "--network", v["net"], "--ip", v["ip"], "-p", "7000", "--", "sleep", "300"]

    def undo(eng: Engine, v: dict) -> None:
        eng("rm", "-f", v["ctr"])

    return Scenario(f"run-{driver}", prepare, command, undo)


def _connect(driver: str):
    def prepare(eng: Engine, v: dict) -> None:
        eng("network", "create", "-d", v["driver"], "--subnet", v["subnet"], v["net"])
        eng("network", "create", "-d", v["driver"], "--subnet", v["subnet2"], v["net2"])
        eng("run", "-d", "--name", v["ctr"], "--network", v["net"], "--", "sleep", "300")

    def command(v: dict) -> list[str]:
        return ["network", "connect", "--ip", v["ip2"], v["net2"], v["ctr"]]

    def undo(eng: Engine, v: dict) -> None:
        eng("network", "disconnect", v["net2"], v["ctr"])

    return Scenario(f"connect-{driver}", prepare, command, undo)


SCENARIOS = [make(d) for make in (_network, _run, _connect) for d in ("bridge", "routed", "macvlan")]


def walk(tmp_path, eng: Engine, scenario: Scenario, v: dict, snap: Callable[[], dict]) -> None:
    """Learn the steps of ``scenario``'s command, then fail each in turn: nothing changes,
    one line on stderr, and the same command then works on an engine without the switch."""
    steps_log = tmp_path / "steps.log"
    eng.kill9()
    eng.env["NETCORE_TEST_STEP_LOG"] = str(steps_log)
    eng.start()
    try:
        scenario.prepare(eng, v)
        steps_log.write_text("")
        eng(*scenario.command(v))
        steps = list(dict.fromkeys(steps_log.read_text().split()))
        scenario.undo(eng, v)
        assert len(steps) >= 3, steps  # the walk is only as good as what it discovers
        assert any(s.startswith(f"{v['driver']}.") for s in steps), steps  # the driver's own steps are walked
        for step in steps:
            eng.kill9()
            eng.env["NETCORE_TEST_FAIL_STEP"] = step
            eng.start()
            before = snap()
            res = eng(*scenario.command(v), check=False)
            assert res.returncode != 0 and "injected" in res.stderr, (step, res.stdout, res.stderr)
            assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, (step, res.stderr)
            after = snap()
            for part in before:
                assert after[part] == before[part], (step, part)
            eng.kill9()
            del eng.env["NETCORE_TEST_FAIL_STEP"]
            eng.start()
            eng(*scenario.command(v))  # the same names, subnet and address are free
            scenario.undo(eng, v)
    finally:
        eng.env.pop("NETCORE_TEST_FAIL_STEP", None)
        eng.env.pop("NETCORE_TEST_STEP_LOG", None)


def _values(name: str, driver: str) -> dict:
    subnet, subnet2 = free_subnet(), free_subnet()
    return {"driver": driver, "subnet": subnet, "subnet2": subnet2, "net": f"{name}-n", "net2": f"{name}-m", "ctr": f"{name}-c",
            "ip": str(ipaddress.ip_network(subnet).network_address + 9), "ip2": str(ipaddress.ip_network(subnet2).network_address + 9)}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_failure_at_every_step_leaves_nothing_and_the_same_command_then_works(tmp_path, name, scenario):
    v = _values(name, scenario.name.rsplit("-", 1)[1])
    eng = Engine(tmp_path).start()
    try:
        walk(tmp_path, eng, scenario, v, lambda: snapshot(eng, [v["subnet"], v["subnet2"]]))
    finally:
        eng.stop()


def _overlay_run():
    """A container on an overlay network, with a container of the other host on it already."""
    base = _run("overlay")

    def prepare(eng: Engine, v: dict) -> None:
        base.prepare(eng, v)
        v["remote"]("run", "-d", "--name", v["ctr"] + "r", "--network", v["net"], "--", "sleep", "300")
        eng("run", "-d", "--name", v["ctr"] + "w", "--network", v["net"], "--", "sleep", "300")  # makes the gateway
        eng("rm", "-f", v["ctr"] + "w")  # bridge network, which stays: every run after this one crosses the same steps

    return Scenario("run-overlay", prepare, base.command, base.undo)


@pytest.mark.parametrize("make", [lambda: _network("overlay"), _overlay_run], ids=["network-create-overlay", "run-overlay"])
def test_overlay_a_failure_at_every_step_leaves_nothing_on_a_cluster(tmp_path, name, make):
    lab = Lab(tmp_path, 2)
    try:
        h1, h2 = lab.hosts
        v = {**_values(name, "overlay"), "remote": h2}
        walk(tmp_path, h1.engine, make(), v, lambda: {**snapshot(h1.engine, [v["subnet"]], h1.name), "etcd": etcd_rows(lab.etcd.url)})
    finally:
        lab.close()
