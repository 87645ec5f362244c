"""``netcore compose`` end to end on a private engine: services on the built-in ``host`` image.

Each test writes its compose file into its own directory and names its project after
the test (``-p``), so the engine's containers are ``<project>_<service>_1``.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from cli_engine import NETCORE, engine_links
from runtime.demo import HELLOWORLD

pytestmark = pytest.mark.root
POST = r"""curl -s -XPOST {host}:8080/helloworld -d '{{\"name\":\"Nic\"}}'"""  # for inside "..." in YAML, as the book's
SERVER = f'["python3", "{HELLOWORLD}"]'


def write(tmp_path: Path, text: str, folder: str = "proj") -> Path:
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    (d / "docker-compose.yml").write_text(textwrap.dedent(text))
    return d


def compose(engine, d: Path, *args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
    """``netcore compose`` run in directory ``d`` (its files and name come from there unless given)."""
    res = subprocess.run([*NETCORE, "compose", *args], cwd=d, env=engine.env, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"compose {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
    return res


def containers(engine, project: str) -> list[str]:
    rows = [json.loads(line) for line in engine("ps", "-a", "--format", "json").stdout.splitlines()]
    return [r["Names"] for r in rows if r["Names"].startswith(project + "_")]


def networks(engine) -> list[str]:
    return [line.split()[1] for line in engine("network", "ls").stdout.splitlines()[1:]]


def wait_log(engine, d: Path, project: str, service: str, text: str, limit: float = 30) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = compose(engine, d, "-p", project, "logs", service).stdout
        if text in out:
            return out
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never appeared in the logs of {service}: {out!r}")


def assert_nothing_left(engine, project: str, links_before: set[str]) -> None:
    assert containers(engine, project) == []
    assert [n for n in networks(engine) if n.startswith(project + "_")] == []
    assert engine_links(engine) == links_before  # the project networks' bridges and veths are gone from the kernel


def test_up_ps_logs_down_two_services_by_name(engine, tmp_path, name):
    d = write(tmp_path, f"""
        services:
          web:
            image: host
            command: {SERVER}
          client:
            image: host
            entrypoint: sh -c "until {POST.format(host='web')}; do sleep 0.1; done; echo; getent hosts web; sleep 300"
    """)
    links = engine_links(engine)
    res = compose(engine, d, "-p", name, "up", "-d")
    assert f'Creating network "{name}_default" with the default driver' in res.stderr
    assert f"{name}_default" in networks(engine)
    out = wait_log(engine, d, name, "client", "Hello Nic")
    assert f'{name}_client_1  | {{"message": "Hello Nic"}}' in out
    web_ip = engine.json("inspect", f"{name}_web_1")[0]["NetworkSettings"]["Networks"][f"{name}_default"]["IPAddress"]
    wait_log(engine, d, name, "client", web_ip)  # client found web by its service name
    client_ip = engine.json("inspect", f"{name}_client_1")[0]["NetworkSettings"]["Networks"][f"{name}_default"]["IPAddress"]
    assert engine("exec", f"{name}_web_1", "getent", "hosts", "client").stdout.split()[0] == client_ip  # and back
    ps = compose(engine, d, "-p", name, "ps").stdout.splitlines()
    assert ps[0].split() == ["NAME", "COMMAND", "SERVICE", "STATUS", "PORTS"]
    assert [(l.split()[0], l.split()[-1]) for l in ps[1:]] == [(f"{name}_client_1", "Up"), (f"{name}_web_1", "Up")]
    labels = engine.json("inspect", f"{name}_web_1")[0]["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == name and labels["com.docker.compose.service"] == "web"
    assert "listening" in compose(engine, d, "-p", name, "logs", "web").stdout
    # a second up changes nothing
    assert f"{name}_web_1 is up-to-date" in compose(engine, d, "-p", name, "up", "-d").stderr
    # without -p, the project is the directory's: nothing of ours is seen
    assert compose(engine, d, "ps", "-q").stdout == ""
    res = compose(engine, d, "-p", name, "down", timeout=120)
    assert f"Removing network {name}_default" in res.stderr
    assert_nothing_left(engine, name, links)


def test_attached_up_streams_prefixed_logs_until_all_exited(engine, tmp_path):
    d = write(tmp_path, """
        services:
          one:
            image: host
            command: sh -c "echo first; echo second"
          two:
            image: host
            command: ["sh", "-c", "echo from-two; exit 3"]
    """, folder="My Project")
    res = compose(engine, d, "up")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert "myproject_one_1  | first" in lines and "myproject_one_1  | second" in lines
    assert lines.index("myproject_one_1  | first") < lines.index("myproject_one_1  | second")
    assert "myproject_two_1  | from-two" in lines
    assert "myproject_two_1 exited with code 3" in lines and "myproject_one_1 exited with code 0" in lines
    assert "Attaching to myproject_one_1, myproject_two_1" in res.stderr
    compose(engine, d, "down")
    assert containers(engine, "myproject") == []


def test_custom_network_aliases_and_ipv4_address(engine, tmp_path, name, subnet):
    net = ipaddress.ip_network(subnet)
    fixed = str(net.network_address + 10)
    d = write(tmp_path, f"""
        version: "3.8"
        services:
          api:
            image: host
            command: sleep 300
            networks:
              front:
                aliases: [www, "${{EXTRA_ALIAS:-backend}}"]
                ipv4_address: {fixed}
          probe:
            image: host
            command: sleep 300
            networks: [front]
        networks:
          front:
            driver: bridge
            ipam:
              config:
                - subnet: {subnet}
            labels:
              purpose: test
    """)
    compose(engine, d, "-p", name, "up", "-d")
    view = engine.json("network", "inspect", f"{name}_front")[0]
    assert view["IPAM"]["Config"][0]["Subnet"] == subnet
    assert view["Labels"]["purpose"] == "test" and view["Labels"]["com.docker.compose.network"] == "front"
    got = engine.json("inspect", f"{name}_api_1")[0]["NetworkSettings"]["Networks"][f"{name}_front"]
    assert got["IPAddress"] == fixed and {"api", "www", "backend"} <= set(got["Aliases"])
    for alias in ("api", "www", "backend"):
        out = engine("exec", f"{name}_probe_1", "getent", "hosts", alias).stdout
        assert out.split()[0] == fixed, alias
    compose(engine, d, "-p", name, "down")
    assert f"{name}_front" not in networks(engine)


def test_depends_on_order_and_service_healthy(engine, tmp_path, name):
    # web listens only after a while; client posts once, without retrying: it works only if
    # compose started it after web's healthcheck passed
    d = write(tmp_path, f"""
        services:
          client:
            image: host
            entrypoint: sh -c "{POST.format(host='web')}"
            depends_on:
              web:
                condition: service_healthy
              alpha:
                condition: service_completed_successfully
          web:
            image: host
            entrypoint: sh -c "sleep 1; exec python3 {HELLOWORLD}"
            depends_on: [zeta]
            healthcheck:
              test: ["CMD", "curl", "-sf", "-XPOST", "localhost:8080/helloworld", "-d", '{{"name": "h"}}']
              interval: 100ms
              retries: 100
          zeta:
            image: host
            command: sleep 300
          alpha:
            image: host
            command: ["true"]
    """)
    res = compose(engine, d, "-p", name, "up", "--exit-code-from", "client", timeout=120)
    assert res.returncode == 0
    assert f'{name}_client_1  | {{"message": "Hello Nic"}}' in res.stdout.splitlines()
    created = [l.split()[1] for l in res.stderr.splitlines() if l.startswith("Creating ") and l.endswith("done")]
    assert created.index(f"{name}_zeta_1") < created.index(f"{name}_web_1") < created.index(f"{name}_client_1")
    assert created.index(f"{name}_alpha_1") < created.index(f"{name}_client_1")
    health = engine.json("inspect", f"{name}_web_1")[0]["State"]
    assert health["Health"]["Status"] == "healthy" or not health["Running"]
    compose(engine, d, "-p", name, "up", "-d", "web")  # recreated (the abort stopped it): starting, then healthy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ps = {l.split()[0]: l for l in compose(engine, d, "-p", name, "ps").stdout.splitlines()[1:]}
        if "Up (healthy)" in ps[f"{name}_web_1"]:
            break
        assert "Up (starting)" in ps[f"{name}_web_1"]
        time.sleep(0.1)
    assert "Up (healthy)" in ps[f"{name}_web_1"] and "Exit 0" in ps[f"{name}_alpha_1"]
    compose(engine, d, "-p", name, "down")


def test_service_healthy_reports_an_unhealthy_dependency_and_leaves_nothing(engine, tmp_path, name):
    d = write(tmp_path, """
        services:
          db:
            image: host
            command: sleep 300
            healthcheck: {test: ["CMD", "sh", "-c", "echo not ready; exit 1"], interval: 50ms, retries: 2}
          web:
            image: host
            command: sleep 300
            depends_on: {db: {condition: service_healthy}}
    """)
    links = engine_links(engine)
    res = compose(engine, d, "-p", name, "up", "-d", check=False)
    assert res.returncode == 1 and res.stderr.splitlines()[-1] == f"Error: container {name}_db_1 is unhealthy"
    assert "Traceback" not in res.stderr
    assert_nothing_left(engine, name, links)


def test_a_failed_up_leaves_nothing(engine, tmp_path, name, subnet):
    links = engine_links(engine)
    d = write(tmp_path, """
        services:
          init:
            image: host
            command: sh -c "exit 3"
          app:
            image: host
            command: sleep 300
            depends_on: {init: {condition: service_completed_successfully}}
    """)
    res = compose(engine, d, "-p", name, "up", "-d", check=False)
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1] == "Error: service \"init\" didn't complete successfully: exit 3"
    assert_nothing_left(engine, name, links)
    # the engine refuses the second container (an address outside the network): the first one goes too
    outside = str(ipaddress.ip_network(subnet).broadcast_address + 5)
    d = write(tmp_path, f"""
        services:
          first: {{image: host, command: sleep 300, networks: [net]}}
          second: {{image: host, command: sleep 300, depends_on: [first], networks: {{net: {{ipv4_address: {outside}}}}}}}
        networks:
          net: {{ipam: {{config: [{{subnet: {subnet}}}]}}}}
    """, folder="second")
    res = compose(engine, d, "-p", name, "up", "-d", check=False)
    assert res.returncode == 1 and len([l for l in res.stderr.splitlines() if l.startswith("Error")]) == 1
    assert f"Creating {name}_first_1 ... done" in res.stderr
    assert_nothing_left(engine, name, links)


def test_a_routed_network(engine, tmp_path, name, subnet):
    d = write(tmp_path, f"""
        services:
          a: {{image: host, command: sleep 300, networks: [calico]}}
          b: {{image: host, command: sleep 300, networks: [calico]}}
        networks:
          calico:
            driver: routed
            driver_opts: {{block-size: "28"}}
            ipam: {{config: [{{subnet: {subnet}}}]}}
    """)
    compose(engine, d, "-p", name, "up", "-d")
    view = engine.json("network", "inspect", f"{name}_calico")[0]
    assert view["Driver"] == "routed" and view["Options"].get("block-size") == "28"
    b = engine.json("inspect", f"{name}_b_1")[0]["NetworkSettings"]["Networks"][f"{name}_calico"]
    assert b["IPPrefixLen"] == 32 and ipaddress.ip_address(b["IPAddress"]) in ipaddress.ip_network(subnet)
    assert engine("exec", f"{name}_a_1", "getent", "hosts", "b").stdout.split()[0] == b["IPAddress"]
    assert engine("exec", f"{name}_a_1", "ping", "-c", "1", "-W", "2", "b", check=False).returncode == 0
    compose(engine, d, "-p", name, "down")
    assert f"{name}_calico" not in networks(engine)


def test_an_overlay_network_across_two_hosts(tmp_path, name):
    from multihost import Lab

    lab = Lab(tmp_path / "lab", 2)
    try:
        h1, h2 = lab.hosts
        one = write(tmp_path, """
            services:
              db: {image: host, command: sleep 300, networks: [ov]}
            networks:
              ov: {driver: overlay}
        """, folder="one")
        two = write(tmp_path, f"""
            services:
              web: {{image: host, command: sleep 300, networks: [ov]}}
            networks:
              ov: {{external: true, name: {name}_ov}}
        """, folder="two")
        compose(h1.engine, one, "-p", name, "up", "-d")
        assert h2.json("network", "inspect", f"{name}_ov")[0]["Scope"] == "global"  # the cluster's network
        compose(h2.engine, two, "-p", f"{name}b", "up", "-d")
        db = h1.json("inspect", f"{name}_db_1")[0]["NetworkSettings"]["Networks"][f"{name}_ov"]["IPAddress"]
        assert h2("exec", f"{name}b_web_1", "getent", "hosts", "db").stdout.split()[0] == db
        assert h2("exec", f"{name}b_web_1", "ping", "-c", "1", "-W", "2", "db", check=False).returncode == 0
        compose(h2.engine, two, "-p", f"{name}b", "down")  # an external network stays
        assert f"{name}_ov" in [l.split()[1] for l in h1("network", "ls").stdout.splitlines()[1:]]
        compose(h1.engine, one, "-p", name, "down")
        assert f"{name}_ov" not in [l.split()[1] for l in h2("network", "ls").stdout.splitlines()[1:]]
    finally:
        lab.close()


def test_a_relative_bind_mount_is_the_project_directorys(engine, tmp_path, name):
    d = write(tmp_path, """
        services:
          w:
            image: host
            command: sh -c "cat /mnt/in.txt > /mnt/out.txt && echo written >> /mnt/out.txt && ! touch /srv/ro/x"
            volumes: ["./data:/mnt", {type: bind, source: ./ro, target: /srv, read_only: true}]
    """)
    (d / "data").mkdir()
    (d / "data" / "in.txt").write_text("from the host\n")
    (d / "ro").mkdir()
    res = compose(engine, d, "-p", name, "up", "--exit-code-from", "w")
    assert res.returncode == 0, res.stdout
    assert (d / "data" / "out.txt").read_text() == "from the host\nwritten\n"
    assert not (d / "ro" / "x").exists()
    mounts = {m["Destination"]: m for m in engine.json("inspect", f"{name}_w_1")[0]["Mounts"]}
    assert mounts["/mnt"]["Source"] == str(d / "data") and mounts["/mnt"]["RW"]
    assert mounts["/srv"]["Source"] == str(d / "ro") and not mounts["/srv"]["RW"]
    compose(engine, d, "-p", name, "down")
