"""The macvlan driver, tested as its author would with the ``netcore.testing`` pytest plugin:
an engine in a test netns (``netcore_engine``), parents made by the test in that netns,
failure injection per request, and the plugin's leak check at teardown (the engine's
netns and its sandboxes' netns must hold nothing of it after ``rm``)."""

from __future__ import annotations

import json

import pytest

from cli_engine import free_subnet
from netcore.testing import LeakChecker, TestEngine, in_netns

pytestmark = pytest.mark.root


def _veth(netns: str, name: str) -> None:
    """A veth pair ``name``/``name``p, both up, in the engine's netns: a parent with carrier."""
    in_netns(netns, "ip", "link", "add", name, "type", "veth", "peer", "name", name + "p", check=True)
    in_netns(netns, "ip", "link", "set", name, "up", check=True)
    in_netns(netns, "ip", "link", "set", name + "p", "up", check=True)


def _pings(eng: TestEngine, ctr: str, ip: str) -> bool:
    return eng("exec", ctr, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0


def _ip(eng: TestEngine, ctr: str, net: str) -> str:
    return eng.json("inspect", ctr)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def _link(netns: str, ifname: str) -> dict:
    return json.loads(in_netns(netns, "ip", "-d", "-j", "link", "show", ifname, check=True).stdout)[0]


def test_two_containers_talk_over_a_parent_and_not_across_parents(netcore_engine, netcore_netns):
    eng = netcore_engine
    _veth(netcore_netns, "nctpa")
    _veth(netcore_netns, "nctpb")
    sub_a, sub_b = free_subnet(), free_subnet()
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpa", "--subnet", sub_a, "mva")
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpb", "-o", "macvlan_mode=bridge", "--subnet", sub_b, "mvb")
    for ctr, net in (("a1", "mva"), ("a2", "mva"), ("b1", "mvb")):
        eng("run", "-d", "--name", ctr, "--network", net, "--", "sleep", "300")

    eth0 = _link(eng.sandbox("a1"), "eth0")
    assert eth0["linkinfo"]["info_kind"] == "macvlan" and eth0["linkinfo"]["info_data"]["mode"] == "bridge"
    assert _pings(eng, "a1", _ip(eng, "a2", "mva"))
    assert _pings(eng, "a2", _ip(eng, "a1", "mva"))
    b1 = _ip(eng, "b1", "mvb")
    # even with b1's subnet on-link, a1's frames never reach the other parent's segment
    in_netns(eng.sandbox("a1"), "ip", "route", "add", sub_b, "dev", "eth0", check=True)
    assert not _pings(eng, "a1", b1)
    assert _pings(eng, "b1", b1)  # b1 itself is up: the failure above is isolation

    ep_state = eng.json("inspect", "a1")[0]["NetworkSettings"]["Networks"]["mva"]["DriverState"]
    assert ep_state == {"parent": "nctpa", "macvlan_mode": "bridge"}  # endpoint_oper_info, shown by inspect
    state = eng.json("network", "inspect", "mva")[0]
    assert state["DriverState"] == {"parent": "nctpa", "macvlan_mode": "bridge", "parent_created": False}
    for ctr in ("a1", "a2", "b1"):
        eng("rm", "-f", ctr)
    eng("network", "rm", "mva")
    eng("network", "rm", "mvb")
    assert in_netns(netcore_netns, "ip", "link", "show", "nctpa").returncode == 0  # a parent given is never removed


def test_without_a_parent_the_network_makes_its_own_and_removes_it(netcore_engine, netcore_netns, netcore_leaks):
    eng = netcore_engine
    netcore_leaks(netcore_netns, f"nc-{eng.tag}-")  # checked at teardown: nothing of this test is left
    net = eng("network", "create", "-d", "macvlan", "--internal", "--subnet", free_subnet(), "mvi").stdout.strip()
    net_id = eng.json("network", "inspect", "mvi")[0]["Id"]
    parent = f"dm-{net_id[:12]}"
    assert eng.json("network", "inspect", "mvi")[0]["DriverState"]["parent"] == parent, net
    assert _link(netcore_netns, parent)["ifalias"] == f"netcore:{eng.tag}:{net_id}"
    eng("run", "-d", "--name", "i1", "--network", "mvi", "--", "sleep", "300")
    eng("run", "-d", "--name", "i2", "--network", "mvi", "--", "sleep", "300")
    assert _pings(eng, "i1", _ip(eng, "i2", "mvi"))
    routes = in_netns(eng.sandbox("i1"), "ip", "-j", "route", "show").stdout
    assert all(r.get("dst") != "default" for r in json.loads(routes)), routes  # --internal: no default route
    eng("rm", "-f", "i1", "i2")
    eng("network", "rm", "mvi")
    assert in_netns(netcore_netns, "ip", "link", "show", parent).returncode != 0


def test_bad_options_are_one_line_and_change_nothing(netcore_engine, netcore_netns):
    eng = netcore_engine
    _veth(netcore_netns, "nctpc")
    checker = eng.checker()
    before = checker.snapshot()
    cases = [
        (["-o", "parent=nctnothere"], "parent interface was not found on the host: nctnothere"),
        (["-o", "macvlan_mode=fast"], "invalid value 'fast' for option macvlan_mode"),
        (["-o", "colour=red"], "unknown macvlan driver option 'colour'"),
    ]
    for opts, message in cases:
        res = eng("network", "create", "-d", "macvlan", *opts, "--subnet", free_subnet(), "bad", check=False)
        assert res.returncode != 0 and message in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpc", "--subnet", free_subnet(), "first")
    res = eng("network", "create", "-d", "macvlan", "-o", "parent=nctpc", "--subnet", free_subnet(), "second", check=False)
    assert res.returncode != 0 and "is already using parent interface nctpc" in res.stderr, res.stderr
    assert eng("network", "inspect", "second", check=False).returncode != 0
    eng("network", "rm", "first")
    checker.check(before, "refused commands")


def test_a_failure_at_any_step_leaves_nothing_per_request(netcore_engine, netcore_netns):
    """The plugin's walk: one engine, each command failing at one step of its own request."""
    eng = netcore_engine
    subnet = free_subnet()
    walked = eng.walk(["network", "create", "-d", "macvlan", "--subnet", subnet, "mvw"], ["network", "rm", "mvw"])
    assert {"network.driver", "macvlan.claim", "macvlan.parent"} <= set(walked), walked
    eng("network", "create", "-d", "macvlan", "--subnet", subnet, "mvw")
    walked = eng.walk(["run", "-d", "--name", "w1", "--network", "mvw", "--", "sleep", "300"], ["rm", "-f", "w1"])
    assert "macvlan.link" in walked, walked
    # the switch is the request's: the engine itself fails nothing afterwards
    eng("run", "-d", "--name", "w2", "--network", "mvw", "--", "sleep", "300")
    eng("rm", "-f", "w2")
    eng("network", "rm", "mvw")


def test_the_plugins_leak_checker_sees_a_leak(netcore_netns):
    """The checker is only worth something if it can fail."""
    checker = LeakChecker(netcore_netns)
    before = checker.snapshot()
    in_netns(netcore_netns, "ip", "link", "add", "leak0", "type", "veth", "peer", "name", "leak1", check=True)
    with pytest.raises(AssertionError, match="leak0"):
        checker.check(before)
    in_netns(netcore_netns, "ip", "link", "del", "leak0", check=True)
    checker.check(before)


def test_plugins_lists_each_driver_with_its_distribution(netcore_engine):
    import importlib.metadata as md

    rows = [json.loads(line) for line in netcore_engine("plugins", "--format", "json").stdout.splitlines()]
    by = {(r["Name"], r["Kind"]): r for r in rows}
    assert by[("macvlan", "network")]["Distribution"] == "netcore"
    assert by[("macvlan", "network")]["Version"] == md.version("netcore")
    assert by[("default", "ipam")]["Kind"] == "ipam"
    assert {"bridge", "host", "none", "overlay", "routed", "macvlan"} <= {r["Name"] for r in rows if r["Kind"] == "network"}
    text = netcore_engine("plugins").stdout.splitlines()
    assert text[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION"]
    assert ["macvlan", "network", "netcore", md.version("netcore")] in [line.split() for line in text]


def test_system_info_names_each_driver_with_its_distribution(netcore_engine):
    import importlib.metadata as md

    doc = netcore_engine.json("system", "info", "-f", "json")
    rows = {(r["Name"], r["Kind"]): r for r in doc["NetcorePlugins"]}
    assert rows[("macvlan", "network")]["Version"] == md.version("netcore")
    assert "macvlan" in doc["Plugins"]["Network"]  # Docker's own list, as docker info shows it
    text = netcore_engine("system", "info").stdout.splitlines()
    assert " Driver Plugins:" in text and f"  macvlan (network): netcore {md.version('netcore')}" in text, text


def test_hook_trace_in_the_engine_log(netcore_netns, tmp_path):
    """NETCORE_TRACE_HOOKS=macvlan: each call reaching the driver, with its arguments, outcome and time."""
    (tmp_path / "e").mkdir()
    eng = TestEngine(tmp_path / "e", netcore_netns, env={"NETCORE_TRACE_HOOKS": "macvlan"}).start()
    try:
        eng("network", "create", "-d", "macvlan", "--subnet", free_subnet(), "mvt")
        assert eng("network", "create", "-d", "macvlan", "-o", "macvlan_mode=x", "mvx", check=False).returncode != 0
        eng("network", "rm", "mvt")
    finally:
        eng.stop()
    lines = [l for l in eng.log.read_text().splitlines() if "hook macvlan." in l]
    assert any("hook macvlan.create_network(network=mvt/" in l and "-> None [" in l for l in lines), lines
    assert any("hook macvlan.create_network(network=mvx/" in l and "raised InvalidConfig: invalid value 'x'" in l for l in lines), lines
    assert any("hook macvlan.delete_network(network=mvt/" in l for l in lines), lines
    assert not any("hook bridge." in l for l in eng.log.read_text().splitlines())  # only the driver asked for


@pytest.mark.parametrize("kill", [False, True], ids=["term", "kill9"])
def test_an_engine_restart_keeps_the_containers_and_the_parent_claim(netcore_engine, netcore_netns, kill):
    eng = netcore_engine
    _veth(netcore_netns, "nctpr")
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpr", "--subnet", free_subnet(), "mvr")
    eng("network", "create", "-d", "macvlan", "--subnet", free_subnet(), "mvo")  # its own parent
    eng("run", "-d", "--name", "r1", "--network", "mvr", "--", "sleep", "300")
    eng("run", "-d", "--name", "r2", "--network", "mvr", "--", "sleep", "300")
    eng.restart(kill=kill)
    assert _pings(eng, "r1", _ip(eng, "r2", "mvr"))
    res = eng("network", "create", "-d", "macvlan", "-o", "parent=nctpr", "--subnet", free_subnet(), "mvr2", check=False)
    assert res.returncode != 0 and "is already using parent interface nctpr" in res.stderr, res.stderr
    eng("run", "-d", "--name", "r3", "--network", "mvr", "--", "sleep", "300")  # joins after the restart too
    assert _pings(eng, "r3", _ip(eng, "r1", "mvr"))
    eng("rm", "-f", "r1", "r2", "r3")
    eng("network", "rm", "mvr")
    eng("network", "rm", "mvo")


def _echo_on_wire(netns_path: str, iface: str, dst_ip: str, action) -> bool:
    """Whether an ICMP echo request to ``dst_ip`` crossed ``iface`` (in ``netns_path``) during ``action()``."""
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.all import ICMP, IP, conf, sniff

    from netcore.osl import netns

    with netns.entered(netns_path):
        sock = conf.L2listen(iface=iface, promisc=False)
    try:
        action()
        frames = sniff(opened_socket=sock, timeout=0.5)
    finally:
        sock.close()
    return any(ICMP in f and f[IP].dst == dst_ip and f[ICMP].type == 8 for f in frames)


@pytest.mark.parametrize("mode, talk, on_wire", [("bridge", True, False), ("vepa", True, True), ("private", False, None)])
def test_the_macvlan_mode_is_the_kernels(netcore_engine, netcore_netns, mode, talk, on_wire):
    """Behind the parent, a switch that reflects frames (a bridge port in hairpin mode, as a
    VEPA-capable switch does): bridge mode switches between the containers inside the parent
    (nothing on the wire); vepa sends it out to the switch and back; private never delivers."""
    eng = netcore_engine
    _veth(netcore_netns, "nctpm")
    for cmd in (["ip", "link", "add", "nctbm", "type", "bridge"], ["ip", "link", "set", "nctpmp", "master", "nctbm"],
                ["ip", "link", "set", "nctbm", "up"], ["bridge", "link", "set", "dev", "nctpmp", "hairpin", "on"]):
        in_netns(netcore_netns, *cmd, check=True)
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpm", "-o", f"macvlan_mode={mode}", "--subnet", free_subnet(), "mvm")
    eng("run", "-d", "--name", "m1", "--network", "mvm", "--", "sleep", "300")
    eng("run", "-d", "--name", "m2", "--network", "mvm", "--", "sleep", "300")
    assert _link(eng.sandbox("m1"), "eth0")["linkinfo"]["info_data"]["mode"] == mode
    m2 = _ip(eng, "m2", "mvm")
    result: list[bool] = []
    seen = _echo_on_wire(netcore_netns, "nctpmp", m2, lambda: result.append(_pings(eng, "m1", m2)))
    assert result == [talk]
    if on_wire is not None:
        assert seen == on_wire
    eng("rm", "-f", "m1", "m2")
    eng("network", "rm", "mvm")


def test_passthru_takes_one_container_per_parent(netcore_engine, netcore_netns):
    eng = netcore_engine
    _veth(netcore_netns, "nctpt")
    eng("network", "create", "-d", "macvlan", "-o", "parent=nctpt", "-o", "macvlan_mode=passthru", "--subnet", free_subnet(), "mvp")
    eng("run", "-d", "--name", "p1", "--network", "mvp", "--", "sleep", "300")
    res = eng("run", "-d", "--name", "p2", "--network", "mvp", "--", "sleep", "300", check=False)
    assert res.returncode != 0 and "parent interface nctpt is in passthru mode and already has a container" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert eng("inspect", "p2", check=False).returncode != 0  # run -d rolled the container back
    eng("rm", "-f", "p1")
    eng("run", "-d", "--name", "p3", "--network", "mvp", "--", "sleep", "300")  # the parent is free again
    eng("rm", "-f", "p3")
    eng("network", "rm", "mvp")
