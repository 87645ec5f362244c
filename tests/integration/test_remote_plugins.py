"""netcore as a client of Docker network/IPAM plugins (the ``remote`` driver).

The plugin is tests/plugins/docker-test-plugin/plugin.py, a separate process with no
netcore code, found as Docker finds plugins (a socket in the plugin dir, or a .spec
file); the engine's plugin dirs point at this test's temp dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_engine import Engine, free_subnet, host_links

from drivers.remote.client import PluginClient
from netcore import names
from drivers.remote.discovery import Location

pytestmark = pytest.mark.root

PLUGIN = str(Path(__file__).resolve().parents[1] / "plugins" / "docker-test-plugin" / "plugin.py")


class Plugin:
    """The test plugin on ``sock`` with ``--fault``; stopped (socket removed) at teardown."""

    def __init__(self, sock: str, fault: str = "") -> None:
        self.sock = sock
        base = free_subnet(16)
        self.proc = subprocess.Popen([sys.executable, PLUGIN, "--socket", sock, "--pool-base", base, *(["--fault", fault] if fault else [])],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if os.path.exists(self.sock):
            os.unlink(self.sock)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    socks, specs = tmp_path / "plugins", tmp_path / "specs"
    socks.mkdir()
    specs.mkdir()
    return socks, specs


@pytest.fixture
def plugins():
    """Start test plugins with ``plugins(sock, fault)``; they stop after the engine (it may still call them)."""
    started: list[Plugin] = []

    def start(sock: str, fault: str = "") -> Plugin:
        started.append(Plugin(sock, fault))
        return started[-1]

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def rengine(tmp_path: Path, dirs, plugins):
    socks, specs = dirs
    env = {"NETCORE_DOCKER_PLUGIN_SOCKETS": str(socks), "NETCORE_DOCKER_PLUGIN_SPECS": str(specs), "NETCORE_DOCKER_PLUGIN_TIMEOUT": "2"}
    (tmp_path / "e").mkdir()
    eng = Engine(tmp_path / "e", env=env).start()
    yield eng
    eng.stop()


def test_network_and_ipam_plugin_create_run_connect_disconnect_rm(rengine, dirs, name, plugins):
    socks, _ = dirs
    plug = plugins(str(socks / f"tp{name}.sock"))
    net, other = f"{name}n", f"{name}o"
    rengine("network", "create", "-d", f"tp{name}", "--ipam-driver", f"tp{name}", net)
    rengine("network", "create", other)
    info = rengine.json("network", "inspect", net)[0]
    assert info["Driver"] == f"tp{name}" and info["IPAM"]["Driver"] == f"tp{name}"
    subnet, gw = info["IPAM"]["Config"][0]["Subnet"], info["IPAM"]["Config"][0]["Gateway"]
    assert subnet.startswith("10.") and gw.startswith(subnet.rsplit(".", 2)[0])  # the plugin's pool and first address
    rengine("run", "-d", "--name", f"{name}a", "--network", net, "--", "sleep", "120")
    rengine("run", "-d", "--name", f"{name}b", "--network", net, "--", "sleep", "120")
    b_ip = rengine.json("inspect", f"{name}b")[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    out = rengine("exec", f"{name}a", "sh", "-c", "ip -o -4 addr show eth0; ip -4 route show default").stdout
    assert f"/{subnet.split('/')[1]}" in out and f"default via {gw} dev eth0" in out
    assert rengine("exec", f"{name}a", "ping", "-c", "1", "-W", "2", b_ip, check=False).returncode == 0
    assert rengine("exec", f"{name}a", "ping", "-c", "1", "-W", "2", f"{name}b", check=False).returncode == 0  # netcore's DNS

    rengine("run", "-d", "--name", f"{name}c", "--network", other, "--", "sleep", "120")
    rengine("network", "connect", net, f"{name}c")
    assert rengine("exec", f"{name}c", "ping", "-c", "1", "-W", "2", b_ip, check=False).returncode == 0
    rengine("network", "disconnect", net, f"{name}c")
    assert "eth1" not in rengine("exec", f"{name}c", "ip", "-o", "link").stdout

    rengine("rm", "-f", f"{name}a", f"{name}b", f"{name}c")
    rengine("network", "rm", net, other)
    assert not [l for l in host_links() if l.startswith("nctp")]  # the plugin's bridge and veths are gone
    calls = PluginClient(Location("tp", "unix", plug.sock)).call("Test.Calls")["Calls"]
    for c in ("IpamDriver.GetDefaultAddressSpaces", "IpamDriver.RequestPool", "NetworkDriver.CreateNetwork", "NetworkDriver.Join",
              "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint", "NetworkDriver.DeleteNetwork", "IpamDriver.ReleasePool"):
        assert c in calls
    assert calls.count("Plugin.Activate") == 1  # activated once, on first use


def test_a_spec_file_names_the_plugin(rengine, dirs, name, tmp_path, plugins):
    _, specs = dirs
    sock = str(tmp_path / f"elsewhere-{name}.sock")
    plug = plugins(sock)
    (specs / f"sp{name}.spec").write_text(f"unix://{sock}\n")
    rengine("network", "create", "-d", f"sp{name}", f"{name}n")
    assert rengine.json("network", "inspect", f"{name}n")[0]["Driver"] == f"sp{name}"
    rengine("network", "rm", f"{name}n")
    (specs / f"bad{name}.spec").write_text("localhost:9\n")
    res = rengine("network", "create", "-d", f"bad{name}", f"{name}x", check=False)
    assert res.returncode != 0 and "Unknown protocol" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def ours(rengine) -> set[str]:
    """Host links of this test: the test plugin's (nctp*) and those of this engine (its tag in the alias);
    other tests run beside this one."""
    tag = names.engine_tag(rengine.root)
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout
    return {l["ifname"] for l in json.loads(out or "[]") if l["ifname"].startswith("nctp") or f"netcore:{tag}:" in (l.get("ifalias") or "")}


def _fails_cleanly(rengine, args: list[str], *needles: str) -> str:
    before = ours(rengine)
    nets = rengine("network", "ls", "-q").stdout.split()
    res = rengine(*args, check=False, timeout=30)
    assert res.returncode != 0, res.stdout
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, line
    for n in needles:
        assert n in line, line
    assert rengine("network", "ls", "-q").stdout.split() == nets
    assert ours(rengine) - before == set()
    return line


@pytest.mark.parametrize("fault,needle", [
    ("err", "the test plugin refuses this network"),
    ("garbage", "not JSON"),
    ("hang", "no answer within 2 s"),
])
def test_a_failing_plugin_is_one_line_and_leaves_nothing(rengine, dirs, name, fault, needle, plugins):
    socks, _ = dirs
    plug = plugins(str(socks / f"tp{name}.sock"), fault=fault)
    line = _fails_cleanly(rengine, ["network", "create", "-d", f"tp{name}", f"{name}n"], f"tp{name}", needle)
    assert ("CreateNetwork" in line) or fault == "garbage"
    assert rengine("ps", "-q").returncode == 0  # the engine still answers


def test_missing_dead_and_wrong_kind_plugins(rengine, dirs, name, plugins):
    socks, _ = dirs
    _fails_cleanly(rengine, ["network", "create", "-d", f"none{name}", f"{name}n"], f"none{name}", "not found")
    # a dead plugin: its socket is there, nobody listens
    import socket as so
    dead = so.socket(so.AF_UNIX)
    dead.bind(str(socks / f"dead{name}.sock"))
    dead.close()
    _fails_cleanly(rengine, ["network", "create", "-d", f"dead{name}", f"{name}n"], f"dead{name}", "Plugin.Activate", "connection refused")
    plug = plugins(str(socks / f"ni{name}.sock"), fault="no-ipam")
    _fails_cleanly(rengine, ["network", "create", "--ipam-driver", f"ni{name}", f"{name}n"], f"ni{name}", "does not implement IpamDriver")


@pytest.fixture
def served(tmp_path: Path, dirs):
    """An engine that serves its drivers as Docker plugins into the plugin dir."""
    socks, _ = dirs
    (tmp_path / "server").mkdir()
    eng = Engine(tmp_path / "server", daemon_args=("--docker-plugins", "--docker-plugins-dir", str(socks))).start()
    yield eng
    eng.stop()
    assert not list(socks.glob("netcore-*.sock"))  # removed on exit


def test_cross_check_netcore_served_as_a_docker_plugin(served, rengine, dirs, name, subnet):
    """One engine's bridge driver and IPAM, served over Docker's protocol, used by another engine."""
    socks, _ = dirs
    assert {p.name for p in socks.glob("netcore-*.sock")} >= {"netcore-bridge.sock", "netcore-routed.sock", "netcore-ipam.sock"}
    assert not (socks / "netcore-host.sock").exists() and not (socks / "netcore-none.sock").exists()
    net = f"{name}n"
    rengine("network", "create", "-d", "netcore-bridge", "--ipam-driver", "netcore-ipam", "--subnet", subnet, "-o", f"netcore.network={name}s", net)
    theirs = served.json("network", "inspect", f"{name}s")[0]  # the serving engine has it under the name asked for
    assert theirs["Driver"] == "bridge" and theirs["IPAM"]["Config"][0]["Subnet"] == subnet
    rengine("run", "-d", "--name", f"{name}a", "--network", net, "--", "sleep", "120")
    rengine("run", "-d", "--name", f"{name}b", "--network", net, "--", "sleep", "120")
    ips = {c: rengine.json("inspect", f"{name}{c}")[0]["NetworkSettings"]["Networks"][net]["IPAddress"] for c in "ab"}
    assert all(ip.startswith(subnet.rsplit(".", 1)[0]) for ip in ips.values()) and len(set(ips.values())) == 2
    assert rengine("exec", f"{name}a", "ping", "-c", "1", "-W", "2", ips["b"], check=False).returncode == 0
    # the serving engine's records: the two endpoints, their addresses reserved in its IPAM
    assert len(served.json("network", "inspect", f"{name}s")[0].get("Containers") or {}) in (0, 2)
    rengine("rm", "-f", f"{name}a", f"{name}b")
    rengine("network", "rm", net)
    assert f"{name}s" not in served("network", "ls").stdout


def test_engine_restart_activates_the_plugin_again(rengine, dirs, name, plugins):
    """Networks of a plugin outlive the engine: after a restart the plugin is found and
    activated again on first use, and its containers' endpoints go through it."""
    import signal

    socks, _ = dirs
    plug = plugins(str(socks / f"tp{name}.sock"))
    net = f"{name}n"
    rengine("network", "create", "-d", f"tp{name}", "--ipam-driver", f"tp{name}", net)
    rengine("run", "-d", "--name", f"{name}a", "--network", net, "--", "sleep", "120")
    rengine.proc.send_signal(signal.SIGTERM)
    rengine.proc.wait(timeout=30)
    rengine.start()
    assert rengine.json("network", "inspect", net)[0]["Driver"] == f"tp{name}"
    rengine("run", "-d", "--name", f"{name}b", "--network", net, "--", "sleep", "120")
    a_ip = rengine.json("inspect", f"{name}a")[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert rengine("exec", f"{name}b", "ping", "-c", "1", "-W", "2", a_ip, check=False).returncode == 0
    rengine("rm", "-f", f"{name}a", f"{name}b")
    rengine("network", "rm", net)
    calls = PluginClient(Location("tp", "unix", plug.sock)).call("Test.Calls")["Calls"]
    assert calls.count("Plugin.Activate") == 2 and calls[-2] == "IpamDriver.ReleasePool"  # the last is Test.Calls itself
    assert not [l for l in ours(rengine) if l.startswith("nctp")]
