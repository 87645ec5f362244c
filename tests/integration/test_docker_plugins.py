"""netcore's drivers under a real Docker Engine (``netcore daemon --docker-plugins``).

dockerd (Debian's docker.io) and the netcore engine share one test netns, as they
would share a host; dockerd finds the plugin sockets in its /run/docker/plugins (the
test's dir, bind-mounted in dockerd's own mount namespace). The book's example: a
server and a client by name on a ``netcore-*`` network, isolation from a second one,
``docker network rm`` leaving nothing of netcore's; then restarts of both sides.
"""

from __future__ import annotations

import json
import signal
import sys
import subprocess
from pathlib import Path

import pytest

from cli_engine import Engine, free_subnet
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/docker_host.py

from docker_host import IMAGE, DockerHost, available  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.skipif(available() is not None, reason=available() or "")]

SERVER = ["sh", "-c", "echo hello from $(hostname) > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]


def netns_links(docker: DockerHost) -> set[str]:
    out = subprocess.run(["ip", "-n", docker.netns, "-j", "link"], capture_output=True, text=True).stdout
    return {l["ifname"] for l in json.loads(out or "[]")}


def netcore_links(docker: DockerHost) -> set[str]:
    return {l for l in netns_links(docker) if l.startswith(("ncbr", "ncve", "ncd"))}


@pytest.fixture
def docker(tmp_path: Path):
    host = DockerHost(str(tmp_path / "plugins"))
    host.setup_netns()
    yield host
    host.stop()


@pytest.fixture
def served(tmp_path: Path, docker: DockerHost):
    """The netcore engine with --docker-plugins in dockerd's netns, then dockerd."""
    (tmp_path / "nc").mkdir()
    eng = Engine(tmp_path / "nc", daemon_args=("--docker-plugins", "--docker-plugins-dir", docker.plugins_dir), netns=docker.netns_path)
    eng.start()
    docker.start()
    yield eng
    docker.stop()  # containers and networks first, through the plugin
    eng.stop()


def fetch(docker: DockerHost, network: str, target: str) -> subprocess.CompletedProcess:
    """A client container: ``target`` resolved by Docker's embedded DNS (busybox's own resolver, and a port:
    the static busybox crashes in NSS lookups), then an HTTP GET."""
    host = target
    if not target[0].isdigit():
        host = f"$(nslookup {target} 127.0.0.11 | awk '/^Address: /{{a=$2}} END{{print a}}')"
    script = f"h={host}; [ -n \"$h\" ] || {{ echo no address for {target} >&2; exit 3; }}; timeout 5 wget -q -O - http://$h:80/index.html; exit $?"  # not PID 1: the timeout can kill it
    return docker("run", "--rm", "--network", network, IMAGE, "sh", "-c", script, check=False)


@pytest.mark.parametrize("driver,ipam", [("bridge", None), ("bridge", "netcore-ipam"), ("routed", "netcore-ipam"), ("routed", None)])
def test_book_example_on_docker_over_netcore(served, docker, name, driver, ipam):
    net, other = f"{name}net", f"{name}other"
    own = netcore_links(docker)  # the engine's own default bridge
    ipam_args = ["--ipam-driver", ipam] if ipam else []
    docker("network", "create", "-d", f"netcore-{driver}", *ipam_args, "-o", f"netcore.network={name}", net)
    docker("network", "create", "-d", f"netcore-{driver}", *ipam_args, other)
    ls = served("network", "ls").stdout
    assert name in ls and "docker-" in ls  # netcore lists Docker's networks: by the name asked for, else docker-<id>
    info = served.json("network", "inspect", name)[0]
    assert info["Driver"] == driver and info["Labels"]["com.docker.network.id"] == docker("network", "inspect", "-f", "{{.Id}}", net).stdout.strip()

    docker("run", "-d", "--name", f"{name}srv", "--network", net, IMAGE, *SERVER)
    srv_ip = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{name}srv").stdout.strip()
    assert srv_ip and srv_ip.split(".")[:2] == info["IPAM"]["Config"][0]["Subnet"].split(".")[:2]
    res = fetch(docker, net, f"{name}srv")  # by name: Docker's embedded DNS, netcore's data path
    assert res.returncode == 0 and "hello from" in res.stdout, res.stderr
    if driver == "routed":  # Calico's shape: a /32 route to the container's host veth, 169.254.1.1 as gateway
        routes = subprocess.run(["ip", "-n", docker.netns, "route"], capture_output=True, text=True).stdout
        assert any(l.startswith(f"{srv_ip} dev ncve-") for l in routes.splitlines()), routes
        out = docker("exec", f"{name}srv", "ip", "route").stdout
        assert "default via 169.254.1.1" in out
    assert fetch(docker, other, srv_ip).returncode != 0  # isolated from the second network
    port = str(20000 + int(name[1:5], 16) % 20000)
    docker("run", "-d", "--name", f"{name}pub", "--network", net, "-p", f"{port}:80", IMAGE, *SERVER)
    got = subprocess.run(["nsenter", f"--net={docker.netns_path}", "/bin/busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/index.html"],
                         capture_output=True, text=True, timeout=20)
    assert "hello from" in got.stdout, got.stderr  # -p: netcore's DNAT, from the host itself
    docker("rm", "-f", f"{name}pub")
    got = subprocess.run(["nsenter", f"--net={docker.netns_path}", "/bin/busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}/index.html"],
                         capture_output=True, text=True, timeout=20)
    assert "hello from" not in got.stdout

    docker("rm", "-f", f"{name}srv")
    docker("network", "rm", net, other)
    assert name not in served("network", "ls").stdout and "docker-" not in served("network", "ls").stdout
    assert netcore_links(docker) == own


def test_plugin_restart_and_dockerd_restart_with_containers_running(served, docker, name):
    net = f"{name}net"
    own = netcore_links(docker)
    docker("network", "create", "-d", "netcore-bridge", "--ipam-driver", "netcore-ipam", net)
    docker("run", "-d", "--name", f"{name}srv", "--network", net, IMAGE, *SERVER)
    assert fetch(docker, net, f"{name}srv").returncode == 0

    served.proc.send_signal(signal.SIGTERM)  # the plugin goes away: its sockets with it
    served.proc.wait(timeout=30)
    assert not list(Path(docker.plugins_dir).glob("netcore-*.sock"))
    served.start()
    res = fetch(docker, net, f"{name}srv")  # dockerd never re-sends CreateNetwork: the state was kept
    assert res.returncode == 0 and "hello from" in res.stdout, res.stderr

    docker.restart()  # live-restore: the server keeps running; dockerd activates the plugin anew
    assert docker("inspect", "-f", "{{.State.Running}}", f"{name}srv").stdout.strip() == "true"
    res = fetch(docker, net, f"{name}srv")
    assert res.returncode == 0 and "hello from" in res.stdout, res.stderr

    docker.live_restore = False  # now dockerd stops the container on its way down (Leave, DeleteEndpoint)
    docker.restart()
    assert docker("inspect", "-f", "{{.State.Running}}", f"{name}srv").stdout.strip() == "false"
    docker("start", f"{name}srv")  # a new endpoint on the same network, from the state kept
    res = fetch(docker, net, f"{name}srv")
    assert res.returncode == 0 and "hello from" in res.stdout, res.stderr
    docker("rm", "-f", f"{name}srv")
    nid = docker("network", "inspect", "-f", "{{.Id}}", net).stdout.strip()
    ours = [n for n in served.json("network", "inspect", *served("network", "ls", "-q").stdout.split())
            if n["Labels"].get("com.docker.network.id") == nid]
    assert len(ours) == 1 and ours[0]["Containers"] == {}  # no endpoint record left behind by the restarts
    docker("network", "rm", net)
    assert netcore_links(docker) == own


def test_bad_input_from_docker_is_one_line_and_changes_nothing(served, docker, name):
    before = served("network", "ls", "-q").stdout
    res = docker("network", "create", "-d", "netcore-bridge", "-o", "nosuchoption=1", f"{name}bad", check=False)
    assert res.returncode != 0 and "unknown bridge driver option 'nosuchoption'" in res.stderr
    res = docker("network", "create", "-d", "netcore-bridge", "--ipv6", "--subnet", "fd00:1::/64", f"{name}v6", check=False)
    assert res.returncode != 0 and "IPv4" in res.stderr
    assert served("network", "ls", "-q").stdout == before
    assert f"{name}bad" not in docker("network", "ls").stdout


@pytest.mark.parametrize("driver", ["routed", "overlay"])
def test_two_docker_hosts_share_a_network_through_netcores_cluster(tmp_path, name, driver):
    """Two Docker hosts (netns on an underlay, one etcd): the same `docker network create` on
    each makes one netcore network (global), addresses from per-host blocks, traffic routed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from multihost import Lab

    lab = Lab(tmp_path, 2, engine_args=lambda d: ("--docker-plugins", "--docker-plugins-dir", str(d / "plugins")))
    dockers: list[DockerHost] = []
    try:
        for i, h in enumerate(lab.hosts, 1):
            d = DockerHost(str(tmp_path / f"h{i}" / "plugins"), netns=h.name)
            dockers.append(d)
            d.setup_netns()
            d.start()
        a, b = dockers
        # a subnet no route of the test's own namespace covers: the underlay is bridged there, and with
        # br_netfilter another engine's masquerade for the same subnet would rewrite the hosts' packets
        create = ["network", "create", "-d", f"netcore-{driver}", "--ipam-driver", "netcore-ipam", "--ipam-opt", f"netcore.network={name}",
                  "--subnet", free_subnet(24), name]
        a(*create)
        b(*create)
        for h in lab.hosts:  # one netcore network, known to both engines
            assert [n["Name"] for n in h.json("network", "inspect", name)] == [name]
        subnet = a("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", name).stdout.strip()
        assert subnet == b("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", name).stdout.strip()
        a("run", "-d", "--name", f"{name}srv", "--network", name, IMAGE, *SERVER)
        srv_ip = a("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{name}srv").stdout.strip()
        b("run", "-d", "--name", f"{name}cli", "--network", name, IMAGE, "sleep", "300")
        cli_ip = b("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{name}cli").stdout.strip()
        assert srv_ip != cli_ip
        if driver == "routed":
            blocks = {blk["Host"]: blk["Block"] for blk in lab.hosts[0].json("network", "inspect", name)[0]["DriverState"]["Blocks"]}
            assert len(blocks) == 2  # a block per host
        # across hosts (routed: block routes; overlay: FDB entries), programmed from etcd watches
        try:
            res = lab.wait(lambda: (lambda r: r if r.returncode == 0 else None)(fetch(b, name, srv_ip)), timeout=30)
        except AssertionError:
            diag = [h.run_in(*cmd).stdout for h in lab.hosts for cmd in (["ip", "route"], ["iptables", "-S", "FORWARD"])]
            raise AssertionError(f"no answer from {srv_ip} across hosts; routes and FORWARD of A, B: {diag}") from None
        assert "hello from" in res.stdout, res.stderr
        a("rm", "-f", f"{name}srv")
        b("rm", "-f", f"{name}cli")
        b("network", "rm", name)
        assert [n["Name"] for n in lab.hosts[0].json("network", "inspect", name)] == [name]  # host A still uses it
        a("network", "rm", name)
        lab.wait(lambda: name not in lab.hosts[1]("network", "ls").stdout)
    finally:
        for d in dockers:
            d.stop()
        lab.close()
