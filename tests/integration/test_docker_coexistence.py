"""Beside Docker: its iptables FORWARD policy is DROP, and with br_netfilter bridged traffic meets it.

The host here is a namespace of the test's own, given the ruleset Docker's iptables-nft
backend makes (table ``ip filter``: chain FORWARD with policy drop, jumping first to
DOCKER-USER), with bridge-nf-call-iptables on; the engine runs inside it. netcore puts
its accepts in DOCKER-USER; without them (the control) containers cannot talk.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from cli_engine import Engine
from netcore import names

pytestmark = pytest.mark.root

DOCKER_LIKE = """
table ip filter {
  chain DOCKER-USER {
    return
  }
  chain FORWARD {
    type filter hook forward priority 0; policy drop;
    jump DOCKER-USER
  }
}
"""


def nsrun(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", *argv], capture_output=True, text=True, **kw)


@pytest.fixture
def docker_host(name):
    ns = f"nct-{name}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nsrun(ns, "ip", "link", "set", "lo", "up", check=True)
        nsrun(ns, "nft", "-f", "-", input=DOCKER_LIKE, check=True)
        nsrun(ns, "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1", check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def ours(ns: str, table: str) -> list[dict]:
    out = nsrun(ns, "nft", "-j", "list", "chain", "ip", "filter", "DOCKER-USER", check=True).stdout
    return [o["rule"] for o in json.loads(out)["nftables"] if "rule" in o and o["rule"].get("comment") == table]


def test_containers_talk_on_a_host_running_docker(docker_host, tmp_path, name):
    eng = Engine(tmp_path, netns=f"/run/netns/{docker_host}").start()
    try:
        table = names.table_name(eng.root)
        assert len(ours(docker_host, table)) == 6  # iif and oif for ncbr-*, ncve-*, netcore0
        eng("network", "create", name)
        eng("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "120")
        eng("run", "-d", "--name", f"{name}-b", "--network", name, "--", "sleep", "120")
        b = eng.json("inspect", f"{name}-b")[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
        assert eng("exec", f"{name}-a", "ping", "-c", "1", "-W", "1", b, check=False).returncode == 0

        # the control: without netcore's accepts, Docker's policy drops the bridged traffic
        for r in ours(docker_host, table):
            nsrun(docker_host, "nft", "delete", "rule", "ip", "filter", "DOCKER-USER", "handle", str(r["handle"]), check=True)
        assert eng("exec", f"{name}-a", "ping", "-c", "1", "-W", "1", b, check=False).returncode != 0
        eng("network", "create", f"{name}2")  # a create puts them back (Docker may start after netcore)
        assert len(ours(docker_host, table)) == 6
        assert eng("exec", f"{name}-a", "ping", "-c", "1", "-W", "1", b, check=False).returncode == 0
    finally:
        eng.stop()
    assert ours(docker_host, table) == []  # system reset takes them out again
