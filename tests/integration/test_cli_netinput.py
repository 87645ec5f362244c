"""Network input the engine refuses in one line, changing nothing (issue 12, items 8, 11, 13).

- reserved subnets (loopback, multicast, 0/8, 240/4, link-local) and a gateway that is
  one of the host's own addresses;
- aliases that break the container-name rules or take another container's name on
  the network;
- a bridge name (``-o com.docker.network.bridge.name``) outside the interface-name rules.

Each refusal sits next to a positive control that the same command with good input works.
"""

from __future__ import annotations

import ipaddress

import pytest

from cli_engine import engine_links

pytestmark = pytest.mark.root


def refused(engine, *args: str, needle: str) -> None:
    res = engine(*args, check=False)
    assert res.returncode != 0, args
    assert res.stderr.count("\n") == 1 and needle in res.stderr, (args, res.stderr)
    assert "Traceback" not in res.stderr


def test_reserved_subnets_are_refused(engine, name, subnet):
    before_nets, before_links = engine("network", "ls", "-q").stdout, engine_links(engine)
    for bad in ("127.0.0.0/24", "224.0.0.0/24", "0.0.0.0/8", "240.0.0.0/24", "255.255.255.0/30", "169.254.0.0/24"):
        refused(engine, "network", "create", "--subnet", bad, name, needle="reserved")
    assert engine("network", "ls", "-q").stdout == before_nets
    assert engine_links(engine) == before_links
    engine("network", "create", "--subnet", subnet, name)  # control: an ordinary subnet
    engine("network", "rm", name)


def test_a_gateway_that_is_the_hosts_own_address_is_refused(engine, name, underlay):
    path, host_ip, client_ip = underlay  # host_ip: an address of the host on its "uplink" to the client
    net = ipaddress.ip_network(f"{host_ip}/30", strict=False)
    before_nets, before_links = engine("network", "ls", "-q").stdout, engine_links(engine)
    refused(engine, "network", "create", "--subnet", str(net), "--gateway", host_ip, name, needle="address of this host")
    refused(engine, "network", "create", "--subnet", str(net), name, needle="address of this host")  # the default gateway, .1
    assert engine("network", "ls", "-q").stdout == before_nets
    assert engine_links(engine) == before_links
    # nothing was left reserved: the same subnet with another gateway works
    engine("network", "create", "--subnet", str(net), "--gateway", client_ip, name)
    assert engine.json("network", "inspect", name)[0]["IPAM"]["Config"][0]["Gateway"] == client_ip
    engine("network", "rm", name)


def test_aliases_follow_the_container_name_rules(engine, name):
    engine("network", "create", name)
    engine("run", "-d", "--name", f"{name}-a", "--network", name, "--", "sleep", "60")
    engine("run", "-d", "--name", f"{name}-b", "--network", "bridge", "--", "sleep", "60")
    for bad in ("a b", "../x", "x\ny", "-x", ""):
        refused(engine, "run", "--rm", "--network", name, f"--network-alias={bad}", "--", "true", needle="invalid alias")
        refused(engine, "network", "connect", f"--alias={bad}", name, f"{name}-b", needle="invalid alias")
    # another container's name on that network: refused, in either spelling of the case
    refused(engine, "run", "--rm", "--network", name, "--network-alias", f"{name}-a", "--", "true", needle="name of another container")
    refused(engine, "network", "connect", "--alias", f"{name}-A", name, f"{name}-b", needle="name of another container")
    assert set(engine.json("network", "inspect", name)[0]["Containers"]) == {engine.json("inspect", f"{name}-a")[0]["Id"]}
    # controls: good aliases, and a name that is someone's on another network only
    engine("network", "connect", "--alias", "web.v2", "--alias", f"{name}-other", name, f"{name}-b")
    b = engine.json("inspect", f"{name}-b")[0]["NetworkSettings"]["Networks"][name]
    assert set(b["Aliases"]) >= {"web.v2", f"{name}-other"}
    engine("network", "disconnect", name, f"{name}-b")
    engine("run", "--rm", "--network", "bridge", "--network-alias", f"{name}-a", "--", "true")
    engine("rm", "-f", f"{name}-a", f"{name}-b")


def test_bridge_name_follows_the_interface_name_rules(engine, name):
    before_nets, before_links = engine("network", "ls", "-q").stdout, engine_links(engine)
    for bad in ('a"b;}', "br 0", "br/0", "..", "br:0", "b" * 16, "-br"):
        refused(engine, "network", "create", "-o", f"com.docker.network.bridge.name={bad}", name, needle="invalid bridge name")
    assert engine("network", "ls", "-q").stdout == before_nets
    assert engine_links(engine) == before_links
    br = f"nc{name}"[:15]
    engine("network", "create", "-o", f"com.docker.network.bridge.name={br}", name)
    assert br in engine_links(engine)
    engine("network", "rm", name)
