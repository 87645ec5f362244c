"""Several networks per container: eth0, eth1 ..., the default route's owner, isolation that still holds."""

from __future__ import annotations

import socket

import pytest

from cli_engine import free_port

pytestmark = pytest.mark.root


def routes(engine, cname: str) -> dict[str, str]:
    """The container's default route and interfaces: {"default": "via GW dev IF", "eth0": "10.x.y.z/24", ...}."""
    out = engine("exec", cname, "sh", "-c", "ip -o -4 addr show; ip -4 route show default").stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[0] == "default":
            seen["default"] = f"via {parts[2]} dev {parts[4]}"
        elif parts[1] != "lo":
            seen[parts[1]] = parts[3]
    return seen


def gateway(engine, net: str) -> str:
    return engine.json("network", "inspect", net)[0]["IPAM"]["Config"][0]["Gateway"]


def pings(engine, cname: str, ip: str) -> bool:
    return engine("exec", cname, "ping", "-c", "1", "-W", "1", ip, check=False).returncode == 0


def test_interfaces_in_order_and_the_default_route_stays_on_the_first(engine, name):
    a, b, c = (f"{name}{x}" for x in "abc")
    for n in (a, b, c):
        engine("network", "create", n)
    engine("run", "-d", "--name", name, "--network", a, "--network", b, "--", "sleep", "120")
    nets = engine.json("inspect", name)[0]["NetworkSettings"]["Networks"]
    assert (nets[a]["InterfaceName"], nets[b]["InterfaceName"]) == ("eth0", "eth1")
    seen = routes(engine, name)
    assert seen["eth0"].split("/")[0] == nets[a]["IPAddress"] and seen["eth1"].split("/")[0] == nets[b]["IPAddress"]
    assert seen["default"] == f"via {gateway(engine, a)} dev eth0"

    engine("network", "connect", c, name)
    seen = routes(engine, name)
    assert "eth2" in seen and seen["default"] == f"via {gateway(engine, a)} dev eth0"

    engine("network", "disconnect", a, name)  # the route moves to the next network in join order
    seen = routes(engine, name)
    assert "eth0" not in seen and seen["default"] == f"via {gateway(engine, b)} dev eth1"

    engine("network", "connect", a, name)  # the free name eth0 again; no route change
    assert routes(engine, name)["default"] == f"via {gateway(engine, b)} dev eth1"
    assert engine.json("inspect", name)[0]["NetworkSettings"]["Networks"][a]["InterfaceName"] == "eth0"


def test_gw_priority_takes_the_default_route_and_the_published_ports(engine, name):
    a, b, c = (f"{name}{x}" for x in "abc")
    for n in (a, b, c):
        engine("network", "create", n)
    hport = free_port()
    engine("run", "-d", "--name", name, "--network", a, "--network", f"name={b},gw-priority=1", "-p", f"{hport}:7000",
           "--", "python3", "-c", "import socket,sys\ns=socket.create_server(('',7000))\nwhile True:\n c,a=s.accept(); c.sendall(a[0].encode()); c.close()")
    assert routes(engine, name)["default"] == f"via {gateway(engine, b)} dev eth1"

    def through_port() -> str:
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", hport), timeout=1) as conn:
                    return conn.recv(100).decode()
            except OSError:
                import time

                time.sleep(0.1)
        return "unreachable"

    assert through_port() == gateway(engine, b)  # published through the default route's network
    engine("network", "connect", "--gw-priority", "5", c, name)
    assert routes(engine, name)["default"] == f"via {gateway(engine, c)} dev eth2"
    assert through_port() == gateway(engine, c)  # the ports moved with the route
    view = engine.json("inspect", name)[0]
    assert view["NetworkSettings"]["Networks"][c]["GwPriority"] == 5
    assert view["NetworkSettings"]["Ports"] == {"7000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(hport)}]}
    engine("network", "disconnect", c, name)
    assert routes(engine, name)["default"] == f"via {gateway(engine, b)} dev eth1"
    assert through_port() == gateway(engine, b)

    res = engine("run", "--rm", "--network", f"name={a},gw-priority=x", "--", "true", check=False)
    assert res.returncode != 0 and "invalid gw-priority 'x'" in res.stderr


def test_isolation_holds_for_containers_not_on_both(engine, name):
    a, b = f"{name}a", f"{name}b"
    engine("network", "create", a)
    engine("network", "create", b)
    engine("run", "-d", "--name", name + "-both", "--network", a, "--network", b, "--", "sleep", "120")
    engine("run", "-d", "--name", name + "-a", "--network", a, "--", "sleep", "120")
    engine("run", "-d", "--name", name + "-b", "--network", b, "--", "sleep", "120")
    ip = {c: engine.json("inspect", name + c)[0]["NetworkSettings"]["Networks"] for c in ("-both", "-a", "-b")}
    assert pings(engine, name + "-both", ip["-a"][a]["IPAddress"])
    assert pings(engine, name + "-both", ip["-b"][b]["IPAddress"])
    assert pings(engine, name + "-a", ip["-both"][a]["IPAddress"])
    # not on both: the other network's containers stay out of reach, even the dual-homed one's other side
    assert not pings(engine, name + "-a", ip["-b"][b]["IPAddress"])
    assert not pings(engine, name + "-b", ip["-a"][a]["IPAddress"])
