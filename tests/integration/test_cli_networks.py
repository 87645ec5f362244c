"""``netcore network ...`` end to end, against a real engine and the kernel."""

from __future__ import annotations

import ipaddress
import json
import subprocess

from cli_engine import engine_links, netns_exec


def test_predefined_networks_exist_from_first_start(engine):
    rows = engine("network", "ls").stdout.splitlines()
    assert rows[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    by_name = {r.split()[1]: r.split()[2] for r in rows[1:]}
    assert by_name == {"bridge": "bridge", "host": "host", "none": "none"}
    ids = engine("network", "ls", "-q").stdout.split()
    assert len(ids) == 3 and all(len(i) == 12 for i in ids)


def test_create_with_ipam_options_labels_and_inspect(engine, subnet, name):
    net = ipaddress.ip_network(subnet)
    gateway = str(net.network_address + 1)
    ip_range = str(list(net.subnets(new_prefix=25))[1])
    nid = engine("network", "create", "-d", "bridge", "--subnet", subnet, "--gateway", gateway,
                 "--ip-range", ip_range, "-o", "mtu=1400", "--label", "env=dev", name).stdout.strip()
    assert len(nid) == 64
    [view] = engine.json("network", "inspect", name)
    assert view["Id"] == nid and view["Driver"] == "bridge" and view["Scope"] == "local"
    assert view["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway, "IPRange": ip_range}]
    assert view["Labels"] == {"env": "dev"} and view["Options"] == {"mtu": "1400"} and view["Internal"] is False
    bridge = f"ncbr-{nid[:10]}"
    link = json.loads(subprocess.run(["ip", "-j", "addr", "show", bridge], capture_output=True, text=True).stdout)[0]
    assert link["mtu"] == 1400
    assert {a["local"] for a in link["addr_info"] if a["family"] == "inet"} == {gateway}

    out = engine("run", "--rm", "--network", name, "--", "sh", "-c", "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu").stdout
    addr = ipaddress.ip_interface(out.split()[3])
    assert addr.ip in ipaddress.ip_network(ip_range) and addr.network == net
    assert out.split()[-1] == "1400"

    [view] = engine.json("network", "inspect", name)
    assert view["Containers"] == {}  # the --rm container left


def test_default_driver_is_bridge_and_pools_do_not_overlap(engine, name):
    engine("network", "create", name)
    engine("network", "create", name + "b")
    views = [engine.json("network", "inspect", n)[0] for n in (name, name + "b", "bridge")]
    assert all(v["Driver"] == "bridge" for v in views)
    subnets = [ipaddress.ip_network(v["IPAM"]["Config"][0]["Subnet"]) for v in views]
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])


def test_rm_refused_while_attached_and_for_predefined(engine, name):
    engine("network", "create", name)
    engine("run", "-d", "--name", name + "-srv", "--network", name, "--", "sleep", "60")
    res = engine("network", "rm", name, check=False)
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1 and "active endpoints" in res.stderr and name + "-srv" in res.stderr
    res = engine("network", "rm", "bridge", check=False)
    assert res.returncode != 0 and "pre-defined network" in res.stderr and res.stderr.count("\n") == 1
    engine("rm", "-f", name + "-srv")
    assert engine("network", "rm", name).stdout.strip() == name
    assert name not in engine("network", "ls").stdout


def test_prune_removes_only_unused_user_networks(engine, name):
    engine("network", "create", name + "-used")
    engine("network", "create", name + "-idle")
    engine("run", "-d", "--name", name, "--network", name + "-used", "--", "sleep", "60")
    out = engine("network", "prune", "-f").stdout
    assert name + "-idle" in out and name + "-used" not in out
    names = [r.split()[1] for r in engine("network", "ls").stdout.splitlines()[1:]]
    assert set(names) == {"bridge", "host", "none", name + "-used"}


def test_connect_and_disconnect_a_running_container(engine, name, subnet):
    engine("network", "create", name + "-a")
    engine("network", "create", "--subnet", subnet, name + "-b")
    engine("run", "-d", "--name", name, "--network", name + "-a", "--", "sleep", "60")
    [ctr] = engine.json("inspect", name)
    sandbox = ctr["NetworkSettings"]["SandboxKey"]
    engine("network", "connect", "--ip", str(ipaddress.ip_network(subnet).network_address + 9), name + "-b", name)
    links = netns_exec(sandbox, "ip", "-o", "-4", "addr").stdout
    assert "eth1" in links and str(ipaddress.ip_network(subnet).network_address + 9) in links
    route = netns_exec(sandbox, "ip", "route", "show", "default").stdout
    assert "dev eth0" in route  # the default route stays on the first network
    [view] = engine.json("network", "inspect", name + "-b")
    assert [c["Name"] for c in view["Containers"].values()] == [name]
    engine("network", "disconnect", name + "-b", name)
    assert "eth1" not in netns_exec(sandbox, "ip", "-o", "link").stdout
    assert engine.json("network", "inspect", name + "-b")[0]["Containers"] == {}
    res = engine("network", "disconnect", name + "-b", name, check=False)
    assert res.returncode != 0 and "is not connected" in res.stderr


def test_bad_input_is_one_line_and_changes_nothing(engine, name, subnet):
    before_nets = engine("network", "ls").stdout
    before_links = engine_links(engine)
    cases = [
        (["network", "create", "--subnet", "10.300.0.0/24", name], "invalid subnet"),
        (["network", "create", "--subnet", subnet, "--gateway", "192.0.2.77", name], "gateway"),
        (["network", "create", "--subnet", subnet, "--ip-range", "192.0.2.0/28", name], "ip-range"),
        (["network", "create", "-d", "nosuchdriver", name], "nosuchdriver"),
        (["network", "create", "-o", "colour=blue", name], "colour"),
        (["network", "create", "-o", "mtu=big", name], "mtu"),
        (["network", "create", "-o", "icc=maybe", name], "icc"),
        (["network", "create", "-o", "com.docker.network.bridge.name=thisnameistoolong", name], "bridge name"),
        (["network", "create", "-o", "novalue", name], "KEY=VALUE"),
        (["network", "create", "bridge"], "already exists"),
        (["network", "create", "bad/name"], "invalid network name"),
        (["network", "rm", "none"], "pre-defined"),
        (["network", "rm", "nosuchnet"], "not found"),
    ]
    for args, needle in cases:
        res = engine(*args, check=False)
        assert res.returncode != 0, args
        assert res.stderr.count("\n") == 1 and needle in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    assert engine("network", "ls").stdout == before_nets
    assert engine_links(engine) == before_links


def test_failure_half_way_rolls_back(tmp_path, name):
    from cli_engine import Engine

    eng = Engine(tmp_path).start()  # first start makes the predefined networks
    eng.kill9()
    eng.env["NETCORE_TEST_FAIL_STEP"] = "bridge.firewall"
    eng.start()
    try:
        before = engine_links(eng)
        res = eng("network", "create", name, check=False)
        assert res.returncode != 0 and "injected" in res.stderr
        assert engine_links(eng) == before  # the bridge made by the earlier step is gone again
        assert name not in eng("network", "ls").stdout
        eng.kill9()
        del eng.env["NETCORE_TEST_FAIL_STEP"]
        eng.start()
        eng("network", "create", name)  # nothing of the failed try is in the way
        eng("network", "rm", name)
    finally:
        eng.stop()


def test_join_failure_releases_address_and_links(tmp_path, name, subnet):
    from cli_engine import Engine

    eng = Engine(tmp_path).start()
    eng.kill9()
    eng.env["NETCORE_TEST_FAIL_STEP"] = "endpoint.store"
    eng.start()
    try:
        eng("network", "create", "--subnet", subnet, name)
        before = engine_links(eng)
        ip = str(ipaddress.ip_network(subnet).network_address + 5)
        res = eng("run", "--rm", "--network", name, "--ip", ip, "--", "true", check=False)
        assert res.returncode == 125 and "injected" in res.stderr
        assert engine_links(eng) == before
        assert eng.json("network", "inspect", name)[0]["Containers"] == {}
        assert eng("ps", "-a", "-q").stdout == ""
        eng.kill9()
        del eng.env["NETCORE_TEST_FAIL_STEP"]
        eng.start()
        out = eng("run", "--rm", "--network", name, "--ip", ip, "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert f" {ip}/" in out  # the address the failed run had taken was released
    finally:
        eng.stop()


def test_overlay_without_a_cluster_is_refused_in_one_line(engine, name):
    res = engine("network", "create", "-d", "overlay", name, check=False)
    assert res.returncode != 0
    assert res.stderr.strip() == (
        "Error response from daemon: overlay networks span hosts and need a cluster: start the engine with "
        "--cluster-store etcd://HOST:PORT --cluster-advertise ADDRESS"
    )
    assert name not in engine("network", "ls").stdout
