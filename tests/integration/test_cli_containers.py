"""Containers end to end: run, ps, exec, logs, stop, rm, inspect, and the engine's restarts."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time

import pytest

from cli_engine import engine_links
from runtime.demo import HELLOWORLD

CALL = (
    "import json,urllib.request,time\n"
    "for i in range(100):\n"
    "    try:\n"
    "        r=urllib.request.urlopen(urllib.request.Request('http://%s:8080/helloworld',"
    "data=json.dumps({'name':'Nic'}).encode()),timeout=2); print(r.read().decode()); break\n"
    "    except OSError: time.sleep(0.05)\n"
)


def test_the_books_hello_world_exchange(engine, name):
    engine("network", "create", name)
    engine("run", "-d", "--name", name + "-server", "--network", name, "--", "python3", HELLOWORLD)
    ip = engine.json("inspect", name + "-server")[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
    out = engine("run", "--rm", "--network", name, "--", "python3", "-c", CALL % ip).stdout
    assert json.loads(out) == {"message": "Hello Nic"}
    assert "listening" in engine("logs", name + "-server").stdout


def test_demo_command(engine):
    out = engine("demo").stdout
    assert '{"message": "Hello Nic"}' in out and "cleaned up" in out
    assert [r.split()[1] for r in engine("network", "ls").stdout.splitlines()[1:]] == ["bridge", "host", "none"]


def test_none_has_only_loopback_and_host_sees_host_links(engine):
    out = engine("run", "--rm", "--network", "none", "--", "ip", "-o", "link").stdout
    assert [l.split(":")[1].strip() for l in out.splitlines()] == ["lo"]
    host = {l["ifname"] for l in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)}
    seen = engine("run", "--rm", "--network=host", "--", "cat", "/proc/net/dev").stdout
    inside = {l.split(":")[0].strip() for l in seen.splitlines()[2:]}
    assert "lo" in inside and len(inside & host) >= len(host) - 5  # links come and go while other tests run


def test_container_namespaces_and_files(engine, name):
    engine("network", "create", name)
    out = engine("run", "--rm", "--name", name + "-c", "--network", name, "-e", "FOO=bar", "-w", "/tmp", "--",
                 "sh", "-c", "hostname; echo $$; echo $FOO; pwd; cat /etc/hostname; grep -c " + name + "-c /etc/hosts").stdout.split()
    assert out == [name + "-c", "1", "bar", "/tmp", name + "-c", "1"]
    out = engine("run", "--rm", "--network", name, "--hostname", "web", "--", "hostname").stdout.strip()
    assert out == "web"


def test_static_ip_and_its_errors(engine, name, subnet):
    net = ipaddress.ip_network(subnet)
    engine("network", "create", "--subnet", subnet, name)
    wanted = str(net.network_address + 200)
    engine("run", "-d", "--name", name, "--network", name, "--ip", wanted, "--", "sleep", "60")
    assert engine.json("inspect", name)[0]["NetworkSettings"]["Networks"][name]["IPAddress"] == wanted
    for ip, needle in ((wanted, "already in use"), ("192.0.2.200", "not in subnet"), ("nonsense", "invalid IP")):
        res = engine("run", "--rm", "--network", name, "--ip", ip, "--", "true", check=False)
        assert res.returncode == 125 and needle in res.stderr and res.stderr.count("\n") == 1
    res = engine("run", "--name", name, "--network", name, "--", "true", check=False)
    assert res.returncode == 125 and "already exists" in res.stderr
    # nothing was used up by the failures: the next address is the first free one
    out = engine("run", "--rm", "--network", name, "--", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert ipaddress.ip_interface(out.split()[3]).ip == net.network_address + 2


def test_ps_exec_logs_stop_rm_inspect(engine, name):
    engine("network", "create", name)
    cid = engine("run", "-d", "--name", name, "--network", name, "--", "sh", "-c", "echo started; trap 'exit 7' TERM; while :; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    rows = engine("ps").stdout.splitlines()
    assert rows[0].split()[:2] == ["CONTAINER", "ID"] and any(r.startswith(cid[:12]) and r.endswith(name) for r in rows[1:])
    assert cid[:12] in engine("ps", "-q").stdout.split()
    assert engine("exec", name, "hostname").stdout.strip() == name
    assert engine("exec", name, "sh", "-c", "echo $$").stdout.strip() != "1"  # a new process in the same pid ns
    assert "eth0" in engine("exec", name, "ip", "-o", "link").stdout
    deadline = time.monotonic() + 5  # the log is written by the container, not by the run command
    while engine("logs", name).stdout != "started\n" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine("logs", name).stdout == "started\n"
    [view] = engine.json("inspect", name)
    assert view["Id"] == cid and view["State"]["Running"] and view["Name"] == "/" + name
    assert view["NetworkSettings"]["Networks"][name]["MacAddress"].startswith("02:42:")
    res = engine("rm", name, check=False)
    assert res.returncode != 0 and "running" in res.stderr
    assert engine("stop", name).stdout.strip() == name
    [view] = engine.json("inspect", name)
    assert view["State"]["Status"] == "exited" and view["State"]["ExitCode"] == 7
    assert view["NetworkSettings"]["Networks"] == {}  # the stopped container's endpoint is released
    assert engine("ps", "-q").stdout.strip() == ""
    assert cid[:12] in engine("ps", "-a", "-q").stdout
    assert "Exited (7)" in engine("ps", "-a").stdout
    assert engine.json("network", "inspect", name)[0]["Containers"] == {}
    engine("rm", name)
    assert engine("ps", "-a", "-q").stdout.strip() == ""
    res = engine("inspect", "--type", "container", name, check=False)  # without --type, the network of that name answers
    assert res.returncode != 0 and "No such container" in res.stderr


def test_exit_codes_pass_through(engine):
    assert engine("run", "--rm", "--network", "none", "--", "sh", "-c", "exit 3", check=False).returncode == 3
    assert engine("run", "--rm", "--network", "none", "--", "nosuchcommand", check=False).returncode == 127
    engine("run", "--name", "rc", "--network", "none", "--", "sh", "-c", "exit 5", check=False)
    assert engine.json("inspect", "rc")[0]["State"]["ExitCode"] == 5
    assert "Exited (5)" in engine("ps", "-a").stdout


def test_several_networks_per_container(engine, name):
    engine("network", "create", name + "-a")
    engine("network", "create", name + "-b")
    out = engine("run", "--rm", "--network", name + "-a", "--network", name + "-b", "--", "sh", "-c",
                 "ip -o -4 addr show eth0; ip -o -4 addr show eth1; ip route show default").stdout
    a = engine.json("network", "inspect", name + "-a")[0]["IPAM"]["Config"][0]
    b = engine.json("network", "inspect", name + "-b")[0]["IPAM"]["Config"][0]
    lines = out.splitlines()
    assert ipaddress.ip_interface(lines[0].split()[3]).network == ipaddress.ip_network(a["Subnet"])
    assert ipaddress.ip_interface(lines[1].split()[3]).network == ipaddress.ip_network(b["Subnet"])
    assert lines[2].startswith(f"default via {a['Gateway']} dev eth0")


def test_containers_survive_engine_kill_and_are_readopted(engine, name):
    engine("network", "create", name)
    engine("run", "-d", "--name", name + "-srv", "--network", name, "--", "python3", HELLOWORLD)
    [view] = engine.json("inspect", name + "-srv")
    ip, sandbox = view["NetworkSettings"]["Networks"][name]["IPAddress"], view["NetworkSettings"]["SandboxKey"]
    links = engine_links(engine)
    engine.kill9()
    assert os.path.exists(sandbox)  # this container's own netns, kept while the engine is down
    engine.start()
    assert engine_links(engine) == links  # reconcile kept what is in use
    out = engine("run", "--rm", "--network", name, "--", "python3", "-c", CALL % ip).stdout
    assert json.loads(out) == {"message": "Hello Nic"}
    assert name + "-srv" in engine("ps").stdout
    # names still resolve after the restart: a new container finds the old one, and the
    # old container's own resolver (re-opened in its sandbox) finds the new one
    assert engine("run", "--rm", "--network", name, "--", "getent", "hosts", name + "-srv").stdout.split()[0] == ip
    engine("run", "-d", "--name", name + "-new", "--network", name, "--", "sleep", "60")
    new_ip = engine.json("inspect", name + "-new")[0]["NetworkSettings"]["Networks"][name]["IPAddress"]
    assert engine("exec", name + "-srv", "getent", "hosts", name + "-new").stdout.split()[0] == new_ip
    engine("rm", "-f", name + "-new")
    engine("stop", "-t", "1", name + "-srv")
    assert engine.json("inspect", name + "-srv")[0]["State"]["Status"] == "exited"


def test_exit_while_engine_down_is_recorded(engine, name):
    # the container exits only when told (SIGUSR1), and it is told only once the engine is dead
    engine("run", "-d", "--name", name, "--network", "bridge", "--", "sh", "-c", "trap 'exit 4' USR1; while :; do sleep 0.05; done")
    [view] = engine.json("inspect", name)
    pid, cid = view["State"]["Pid"], view["Id"]
    engine.kill9()
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    exit_file = os.path.join(engine.root, "containers", cid, "exit_code")
    while not os.path.exists(exit_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    with open(exit_file) as f:  # recorded by the container's monitor, with no engine running
        assert f.read().strip() == "4"
    engine.start()
    deadline = time.monotonic() + 5
    while engine.json("inspect", name)[0]["State"]["Status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    [view] = engine.json("inspect", name)
    assert view["State"]["Status"] == "exited" and view["State"]["ExitCode"] == 4
    assert engine.json("network", "inspect", "bridge")[0]["Containers"] == {}


def test_third_party_driver_through_its_entry_point(engine, name, tmp_path):
    pytest.importorskip("netcore_dummy_driver", reason="tests/plugins/netcore-dummy-driver is not installed")
    log = tmp_path / "dummy.log"
    engine.kill9()
    engine.env["NETCORE_DUMMY_LOG"] = str(log)
    engine.start()
    engine("network", "create", "-d", "dummy", name)
    assert engine.json("network", "inspect", name)[0]["Driver"] == "dummy"
    engine("run", "--rm", "--network", name, "--", "true")
    engine("network", "rm", name)
    calls = log.read_text().split("\n")
    assert f"create_network {name}" in calls and any(c.startswith("join") for c in calls)
    assert any(c.startswith("delete_network") for c in calls)


def test_run_rm_client_gets_log_and_code_after_the_auto_removal(engine, name):
    """``run --rm`` asks for the log after the run request: a short command may be exited and
    removed by then (its network is torn down in about a millisecond)."""
    from runtime.api.client import ApiError, Client

    client = Client(f"unix://{engine.socket}", autostart=False)
    cid = client.request("POST", "/containers/run", {"Cmd": ["sh", "-c", "echo hello; exit 3"], "Name": name, "AutoRemove": True})["Id"]
    deadline = time.monotonic() + 10
    while name in engine("ps", "-a").stdout:  # exited and removed
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert b"".join(client.stream(f"/containers/{cid}/logs", {"follow": "1"})) == b"hello\n"
    assert client.request("POST", f"/containers/{cid}/wait")["StatusCode"] == 3
    assert not os.path.exists(os.path.join(engine.root, "containers", cid))  # its files went with the wait
    with pytest.raises(ApiError, match="No such container"):
        client.request("GET", f"/containers/{cid}/logs")


def test_container_interfaces_are_ipv4_only_and_loopback_keeps_ipv6(engine, name):
    """As in Docker for IPv4-only networks: neither end of the veth gets an IPv6 address, so
    no DAD or MLD multicast, which the bridge would flood to every container."""
    from netcore.names import veth_name

    engine("network", "create", name)
    engine("run", "-d", "--name", name, "--network", name, "--", "sleep", "60")
    inet6 = engine("exec", name, "cat", "/proc/net/if_inet6").stdout
    assert [line.split()[-1] for line in inet6.splitlines()] == ["lo"]
    assert engine("exec", name, "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6").stdout.strip() == "1"
    host_end = veth_name(engine.json("inspect", name)[0]["NetworkSettings"]["Networks"][name]["EndpointID"])
    assert open(f"/proc/sys/net/ipv6/conf/{host_end}/disable_ipv6").read().strip() == "1"
    assert subprocess.run(["ip", "-6", "addr", "show", "dev", host_end], capture_output=True, text=True, check=True).stdout == ""
