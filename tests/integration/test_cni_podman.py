"""netcore networks under a real podman 4.3 (CNI backend) through ``netcore-cni``.

The test "host" is a netns of its own (``nct-p...``): the netcore engine runs there and
so does every podman command (``tests/podman_host.py``). The conflist is what
``netcore network cni-config`` prints, in podman's CNI config dir; podman finds
``netcore-cni`` in its plugin dirs and execs it for ADD on ``run`` and DEL on ``rm``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from cli_engine import Engine, free_subnet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/podman_host.py
from podman_host import IMAGE, PodmanHost, available  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.skipif(available() is not None, reason=available() or "")]

SERVER = ["sh", "-c", "echo hello from $(hostname) > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]


@pytest.fixture
def host(tmp_path: Path):
    name = f"nct-p{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def engine(tmp_path: Path, host: str):
    (tmp_path / "nc").mkdir()
    eng = Engine(tmp_path / "nc", netns=host).start()
    yield eng
    eng.stop()


@pytest.fixture
def podman(tmp_path: Path, host: str, engine: Engine):
    pm = PodmanHost(host, str(tmp_path / "cni")).start()
    yield pm
    pm.stop()  # before the engine: podman's DEL goes to it


def get(target: str, bb: str = "") -> list[str]:
    """``sh -c`` GET of ``http://target:80/``: a name resolved by busybox's own resolver at
    127.0.0.11 (the static busybox crashes in NSS lookups, a service name included).
    ``bb="busybox "`` where the applets are not linked (netcore's ``host`` image)."""
    addr = target if target[0].isdigit() else f"$({bb}nslookup {target} 127.0.0.11 | {bb}awk '/^Address: /{{a=$2}} END{{print a}}')"
    return ["sh", "-c", f"h={addr}; [ -n \"$h\" ] || exit 3; {bb}timeout 5 {bb}wget -q -O - http://$h:80/index.html"]


def veths(host: str) -> set[str]:
    out = subprocess.run(["ip", "-n", Path(host).name, "-j", "link"], capture_output=True, text=True).stdout
    return {l["ifname"] for l in json.loads(out or "[]") if l["ifname"].startswith("ncve")}


def attached(engine: Engine, network: str) -> dict[str, str]:
    return {k: v["Name"] for k, v in engine.json("network", "inspect", network)[0]["Containers"].items()}


def test_podman_containers_on_a_netcore_network(engine: Engine, podman: PodmanHost, host: str) -> None:
    net = f"nct{secrets.token_hex(3)}"
    engine("network", "create", "--subnet", free_subnet(), net)
    Path(podman.cni_dir, f"{net}.conflist").write_text(engine("network", "cni-config", net).stdout)
    listed = {n["name"]: n["driver"] for n in json.loads(podman("network", "ls", "--format", "json").stdout)}
    assert listed.get(net) == "netcore-cni"  # podman took the conflist (its version and the plugin's agree)

    podman("run", "-d", "--name", "web", "-p", "18080:80", "--network", net, IMAGE, *SERVER)
    web = podman("inspect", "web", "--format", "{{json .NetworkSettings.Networks}}").stdout
    web_ip = json.loads(web)[net]["IPAddress"]
    cid = podman("inspect", "web", "--format", "{{.Id}}").stdout.strip()
    assert attached(engine, net) == {cid: "web"}
    inside = podman("exec", "web", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f"{web_ip}/" in inside
    assert "nameserver 127.0.0.11" in podman("exec", "web", "cat", "/etc/resolv.conf").stdout

    # a second podman container: by IP and by name (netcore's embedded DNS)
    for target in (web_ip, "web"):
        out = podman("run", "--rm", "--network", net, IMAGE, *get(target)).stdout
        assert out.strip() == f"hello from {cid[:12]}"
    # a netcore container on the same network, both ways by name
    engine("run", "-d", "--name", "ncweb", "--network", net, "host", "sleep", "300")
    assert engine("exec", "ncweb", *get("web", "busybox ")).stdout.strip() == f"hello from {cid[:12]}"
    nc_ip = engine.json("inspect", "ncweb")[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    ping = "h=$(nslookup ncweb 127.0.0.11 | awk '/^Address: /{a=$2} END{print a}'); echo $h; ping -c 1 -W 5 $h"
    out = podman("exec", "web", "sh", "-c", ping).stdout
    assert out.startswith(nc_ip + "\n") and " 0% packet loss" in out
    # the published port (portMappings), from the host itself
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:18080/index.html', timeout=5).read().decode())"
    got = subprocess.run(["nsenter", f"--net={host}", sys.executable, "-c", fetch], capture_output=True, text=True, timeout=30)
    assert got.stdout.strip() == f"hello from {cid[:12]}", (got.returncode, got.stderr)
    assert "18080" in podman("port", "web").stdout

    # DEL on podman rm -f: the endpoint leaves netcore, its veth leaves the host
    before = veths(host)
    assert len(before) == 2  # web's and ncweb's
    podman("rm", "-f", "-t", "0", "web")
    assert list(attached(engine, net).values()) == ["ncweb"]
    assert len(veths(host)) == 1
    engine("rm", "-f", "ncweb")
    engine("network", "rm", net)


def test_podman_run_on_a_network_the_engine_lacks_fails_cleanly(engine: Engine, podman: PodmanHost, host: str) -> None:
    """A conflist naming a network the engine does not have: podman reports netcore-cni's
    message, and neither side keeps anything."""
    net = f"nct{secrets.token_hex(3)}"
    engine("network", "create", "--subnet", free_subnet(), net)
    conflist = json.loads(engine("network", "cni-config", net).stdout)
    conflist["name"] = net + "x"
    conflist["plugins"][0]["network"] = net + "x"
    Path(podman.cni_dir, f"{net}x.conflist").write_text(json.dumps(conflist))
    res = podman("run", "--rm", "--network", net + "x", IMAGE, "true", check=False)
    assert res.returncode != 0 and f"network {net}x not found" in res.stderr
    assert "running" not in podman("ps", "-a", "--format", "{{.State}}").stdout
    assert attached(engine, net) == {} and veths(host) == set()
    engine("network", "rm", net)
