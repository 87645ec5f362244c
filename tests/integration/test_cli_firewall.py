"""The engine's firewall against its neighbours and against `nft flush ruleset` (issue 12, items 1, 7).

The "host" is a network namespace with its own engine (nftables rulesets are per
netns, so flushing there never touches the machine's own rules); a neighbour
namespace is joined to it by a veth pair, like another machine on its LAN. The
neighbour routes 127.0.0.0/8 to the host, with route_localnet on, as an attacker
on the same segment can.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_engine import Engine, free_port, free_subnet, netns_exec
from test_cli_ports import ASK, ASK_ONCE, SERVE

pytestmark = pytest.mark.root


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Site:
    host: str  # netns path of the host, where the engine runs
    neighbour: str  # netns path of the neighbour
    host_ip: str  # the host's address on the link to the neighbour
    neighbour_ip: str
    engine: Engine

    def ask(self, where: str, ip: str, port: int, once: bool = False) -> str:
        """What the server behind ``ip:port`` says to a client in ``where`` (``failed ...`` if nothing)."""
        return netns_exec(where, "python3", "-c", ASK_ONCE if once else ASK, ip, str(port), "tcp", timeout=30).stdout.strip()


@pytest.fixture
def site(tmp_path: Path):
    tid = secrets.token_hex(3)
    host, nb = f"nct-{tid}-h", f"nct-{tid}-n"
    net = ipaddress.ip_network(free_subnet(30))
    host_ip, nb_ip = (str(a) for a in net.hosts())
    eng = Engine(tmp_path, netns=f"/run/netns/{host}")
    try:
        sh("ip", "netns", "add", host)
        sh("ip", "netns", "add", nb)
        sh("ip", "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nb)
        sh("ip", "-n", host, "addr", "add", f"{host_ip}/30", "dev", "eth0")
        sh("ip", "-n", nb, "addr", "add", f"{nb_ip}/30", "dev", "eth0")
        for ns in (host, nb):
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", host, "link", "set", "lo", "up")
        # the neighbour sends 127.0.0.0/8 to the host (its own lo stays down: no local 127/8 there)
        sh("ip", "netns", "exec", nb, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.eth0.route_localnet=1")
        sh("ip", "-n", nb, "route", "add", "127.0.0.0/8", "via", host_ip)
        eng.start()
        yield Site(f"/run/netns/{host}", f"/run/netns/{nb}", host_ip, nb_ip, eng)
    finally:
        if eng.proc is not None:
            eng.stop()
        subprocess.run(["ip", "netns", "del", nb], capture_output=True)
        subprocess.run(["ip", "netns", "del", host], capture_output=True)


def test_a_port_published_on_loopback_is_for_the_host_alone(site, tmp_path):
    eng = site.engine
    lo_port, any_port = free_port(), free_port()
    eng("network", "create", "web")
    eng("run", "-d", "--name", "web", "--network", "web", "-p", f"127.0.0.1:{lo_port}:8000", "-p", f"{any_port}:8000",
        "--", "python3", "-c", SERVE, "8000")
    gw = eng.json("network", "inspect", "web")[0]["IPAM"]["Config"][0]["Gateway"]
    # controls: the host reaches its loopback binding; the neighbour reaches the port published on every address
    assert site.ask(site.host, "127.0.0.1", lo_port) == f"tcp {gw}"
    assert site.ask(site.neighbour, site.host_ip, any_port) == f"tcp {site.neighbour_ip}"
    # the neighbour's packets to 127.0.0.1 reach the host (the route is there) but no published port
    assert site.ask(site.neighbour, "127.0.0.1", lo_port, once=True).startswith("failed")
    assert site.ask(site.neighbour, "127.0.0.1", any_port, once=True).startswith("failed")
    assert site.ask(site.host, "127.0.0.1", any_port) == f"tcp {gw}"  # and the host still reaches both


def _table_of(site: Site) -> str | None:
    from netcore.names import table_name

    name = table_name(site.engine.root)
    out = netns_exec(site.host, "nft", "list", "table", "inet", name)
    return out.stdout if out.returncode == 0 else None


def _until(what, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"timed out waiting for {what.__name__}"
        time.sleep(0.02)
    return value


def test_a_flushed_ruleset_is_restored_without_a_restart(site):
    eng = site.engine
    port = free_port()
    eng("network", "create", "front")
    eng("network", "create", "back")
    eng("run", "-d", "--name", "web", "--network", "front", "-p", f"{port}:8000", "--", "python3", "-c", SERVE, "8000")
    eng("run", "-d", "--name", "db", "--network", "back", "--", "python3", "-c", SERVE, "8000")
    eng("run", "-d", "--name", "client", "--network", "front", "--", "sleep", "300")
    db_ip = eng.json("inspect", "db")[0]["NetworkSettings"]["Networks"]["back"]["IPAddress"]
    web_ip = eng.json("inspect", "web")[0]["NetworkSettings"]["Networks"]["front"]["IPAddress"]

    def reach(ip: str) -> str:
        return eng("exec", "client", "python3", "-c", ASK_ONCE, ip, "8000", "tcp", check=False).stdout.strip()

    # before: the published port answers the neighbour; networks are isolated (control: same network works)
    assert site.ask(site.neighbour, site.host_ip, port) == f"tcp {site.neighbour_ip}"
    assert reach(web_ip).startswith("tcp ")
    assert reach(db_ip).startswith("failed")
    proc = eng.proc

    sh("nsenter", f"--net={site.host}", "nft", "flush", "ruleset")  # the host's own ruleset, in the test's netns only

    _until(lambda: _table_of(site))  # the engine noticed and put its table back
    table = _table_of(site)
    assert "loopback" in table and "net_ifs" in table
    assert site.ask(site.neighbour, site.host_ip, port) == f"tcp {site.neighbour_ip}"  # the published port is back
    assert reach(db_ip).startswith("failed")  # isolation is back
    assert reach(web_ip).startswith("tcp ")
    assert site.ask(site.neighbour, "127.0.0.1", port, once=True).startswith("failed")  # and the loopback guard
    # the same engine, never restarted, goes on: new networks, new published ports
    assert eng.proc is proc and proc.poll() is None
    port2 = free_port()
    eng("network", "create", "more")
    eng("run", "-d", "--name", "web2", "--network", "more", "-p", f"{port2}:8000", "--", "python3", "-c", SERVE, "8000")
    assert site.ask(site.neighbour, site.host_ip, port2) == f"tcp {site.neighbour_ip}"
