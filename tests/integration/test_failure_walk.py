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
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from cli_engine import Engine, free_subnet
from netcore.names import engine_tag, table_name

pytestmark = pytest.mark.root


def _strip_handles(obj):
    if isinstance(obj, dict):
        return {k: _strip_handles(v) for k, v in obj.items() if k != "handle"}
    if isinstance(obj, list):
        return [_strip_handles(v) for v in obj]
    return obj


def snapshot(eng: Engine, subnets: list[str]) -> dict:
    tag = engine_tag(eng.root)
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    ours = sorted(l["ifname"] for l in links if l.get("ifalias", "").startswith(f"netcore:{tag}:"))
    netns = sorted(n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
                   if n.startswith(f"nc-{tag}-"))
    nets = [ipaddress.ip_network(s) for s in subnets]
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout)
    mine = sorted(json.dumps({k: x for k, x in r.items() if k != "flags"}, sort_keys=True) for r in routes  # linkdown: carrier lags
                  if r.get("dev") in ours or (r.get("dst", "default") not in ("default",) and "/" in r.get("dst", "")
                                             and any(ipaddress.ip_network(r["dst"], strict=False).overlaps(n) for n in nets)))
    table = subprocess.run(["nft", "-j", "list", "table", "inet", table_name(eng.root)], capture_output=True, text=True)
    db = sqlite3.connect(f"file:{eng.root}/netcore.db?mode=ro", uri=True)
    try:
        rows = sorted(db.execute("SELECT kind, id, data FROM objects"))
    finally:
        db.close()
    return {"links": ours, "netns": netns, "routes": mine, "nft": _strip_handles(json.loads(table.stdout or "{}")), "store": rows}


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


SCENARIOS = [make(d) for make in (_network, _run, _connect) for d in ("bridge", "routed")]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_a_failure_at_every_step_leaves_nothing_and_the_same_command_then_works(tmp_path, name, scenario):
    subnet, subnet2 = free_subnet(), free_subnet()
    v = {"driver": "bridge" if scenario.name.endswith("bridge") else "routed", "subnet": subnet, "subnet2": subnet2,
         "net": f"{name}-n", "net2": f"{name}-m", "ctr": f"{name}-c",
         "ip": str(ipaddress.ip_network(subnet).network_address + 9), "ip2": str(ipaddress.ip_network(subnet2).network_address + 9)}
    steps_log = tmp_path / "steps.log"
    eng = Engine(tmp_path, env={"NETCORE_TEST_STEP_LOG": str(steps_log)}).start()
    try:
        scenario.prepare(eng, v)
        steps_log.write_text("")
        eng(*scenario.command(v))
        steps = list(dict.fromkeys(steps_log.read_text().split()))
        scenario.undo(eng, v)
        assert len(steps) >= 3, steps  # the walk is only as good as what it discovers
        for step in steps:
            eng.kill9()
            eng.env["NETCORE_TEST_FAIL_STEP"] = step
            eng.start()
            before = snapshot(eng, [subnet, subnet2])
            res = eng(*scenario.command(v), check=False)
            assert res.returncode != 0 and "injected" in res.stderr, (step, res.stdout, res.stderr)
            assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, (step, res.stderr)
            after = snapshot(eng, [subnet, subnet2])
            for part in before:
                assert after[part] == before[part], (step, part)
            eng.kill9()
            del eng.env["NETCORE_TEST_FAIL_STEP"]
            eng.start()
            eng(*scenario.command(v))  # the same names, subnet and address are free
            scenario.undo(eng, v)
    finally:
        eng.env.pop("NETCORE_TEST_FAIL_STEP", None)
        eng.stop()
