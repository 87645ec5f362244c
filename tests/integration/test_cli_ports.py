"""Port publishing end to end: -p/-P/--expose, `netcore port`, from a client host, the host, hairpin.

A "client host" is a netns joined to the host by a veth pair (``underlay``); the
host's end of it is one of the host's own addresses. The servers in containers
answer with the peer address they saw, so a test can tell NAT from no NAT.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from cli_engine import engine_links, free_port, netns_exec

pytestmark = pytest.mark.root

# a TCP (and UDP) server that tells each peer the address it came from
SERVE = (
    "import socket,sys,threading\n"
    "port=int(sys.argv[1])\n"
    "def udp():\n"
    "    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(('',port))\n"
    "    while True:\n"
    "        d,a=u.recvfrom(100); u.sendto(('udp %s' % a[0]).encode(),a)\n"
    "threading.Thread(target=udp,daemon=True).start()\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('',port)); s.listen(50)\n"
    "print('listening',flush=True)\n"
    "while True:\n"
    "    c,a=s.accept(); c.sendall(('tcp %s' % a[0]).encode()); c.close()\n"
)

# connect (retrying while the server starts) and print what it says
ASK = (
    "import socket,sys,time\n"
    "host,port,proto=sys.argv[1],int(sys.argv[2]),sys.argv[3]\n"
    "for i in range(60):\n"
    "    try:\n"
    "        if proto=='udp':\n"
    "            u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(0.5); u.sendto(b'x',(host,port)); print(u.recv(100).decode()); break\n"
    "        c=socket.create_connection((host,port),timeout=1); print(c.recv(100).decode()); break\n"
    "    except OSError as e:\n"
    "        err=e; time.sleep(0.1)\n"
    "else:\n"
    "    print('failed', err); sys.exit(1)\n"
)

ASK_ONCE = ASK.replace("range(60)", "range(3)")


def ask(host: str, port: int, proto: str = "tcp", netns: str | None = None, once: bool = False) -> str:
    argv = ["python3", "-c", ASK_ONCE if once else ASK, host, str(port), proto]
    res = netns_exec(netns, *argv, timeout=30) if netns else subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return res.stdout.strip()


def serve(engine, cname: str, net: str, port: int, *flags: str) -> str:
    engine("run", "-d", "--name", cname, "--network", net, *flags, "--", "python3", "-c", SERVE, str(port))
    return engine.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def test_published_port_from_a_client_host_the_host_and_hairpin(engine, name, underlay):
    path, host_ip, client_ip = underlay
    hport = free_port()
    engine("network", "create", name)
    cip = serve(engine, name + "-web", name, 8000, "-p", f"{hport}:8000")
    gw = engine.json("network", "inspect", name)[0]["IPAM"]["Config"][0]["Gateway"]

    # another host: DNAT only, the container sees the client's real address
    assert ask(host_ip, hport, netns=path) == f"tcp {client_ip}"
    # the host itself, through loopback (masqueraded to the bridge's address) and its own address
    assert ask("127.0.0.1", hport) == f"tcp {gw}"
    assert ask(host_ip, hport) == f"tcp {host_ip}"
    # hairpin: a container of the same network, and the publishing container itself
    out = engine("run", "--rm", "--network", name, "--", "python3", "-c", ASK, host_ip, str(hport), "tcp").stdout.strip()
    assert out == f"tcp {gw}"
    out = engine("exec", name + "-web", "python3", "-c", ASK, host_ip, str(hport), "tcp").stdout.strip()
    assert out == f"tcp {gw}"

    # the port is held: no host program can bind it while it is published
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("", hport))
    # what is not published is not reachable from the client host, even with a route to it
    subprocess.run(["ip", "-n", path.rsplit("/", 1)[1], "route", "add", engine.json("network", "inspect", name)[0]["IPAM"]["Config"][0]["Subnet"], "via", host_ip], check=True)
    assert ask(cip, 8000, netns=path, once=True).startswith("failed")

    engine("rm", "-f", name + "-web")
    assert ask("127.0.0.1", hport, once=True).startswith("failed")
    with socket.socket() as s:
        s.bind(("", hport))  # freed on removal


def test_udp_random_port_ranges_and_the_port_command(engine, name, underlay):
    path, host_ip, client_ip = underlay
    base = free_port()
    while base > 60000:
        base = free_port()
    engine("network", "create", name)
    serve(engine, name + "-a", name, 7000, "-p", "7000", "-p", "7000/udp", "-p", f"{base}-{base + 2}:7000-7002", "-p", f"127.0.0.1::{7000}")
    lines = engine("port", name + "-a").stdout.splitlines()
    mapped = {}
    for line in lines:
        key, _, hostpart = line.partition(" -> ")
        mapped.setdefault(key, []).append(hostpart)
    assert set(mapped) == {"7000/tcp", "7001/tcp", "7002/tcp", "7000/udp"}
    assert mapped["7001/tcp"] == [f"0.0.0.0:{base + 1}"] and mapped["7002/tcp"] == [f"0.0.0.0:{base + 2}"]
    tcp_hosts = sorted(mapped["7000/tcp"])
    assert f"0.0.0.0:{base}" in tcp_hosts and any(h.startswith("127.0.0.1:") for h in tcp_hosts) and len(tcp_hosts) == 3
    auto = [h for h in tcp_hosts if h.startswith("0.0.0.0:") and h != f"0.0.0.0:{base}"][0]
    auto_port = int(auto.split(":")[1])
    lo_port = int([h for h in tcp_hosts if h.startswith("127.0.0.1:")][0].split(":")[1])
    udp_port = int(mapped["7000/udp"][0].split(":")[1])

    assert ask(host_ip, auto_port, netns=path) == f"tcp {client_ip}"
    assert ask(host_ip, udp_port, "udp", netns=path) == f"udp {client_ip}"
    assert ask(host_ip, base, netns=path) == f"tcp {client_ip}"
    assert ask("127.0.0.1", lo_port).startswith("tcp ")
    # bound to 127.0.0.1 only: not reachable on the host's other addresses
    assert ask(host_ip, lo_port, netns=path, once=True).startswith("failed")

    assert engine("port", name + "-a", "7000/udp").stdout.strip() == f"0.0.0.0:{udp_port}"
    res = engine("port", name + "-a", "9999", check=False)
    assert res.returncode != 0 and res.stderr.strip() == f"Error: No public port '9999/tcp' published for {name}-a"
    ps = engine("ps").stdout
    assert f"{base + 2}->" in ps and "7002/tcp" in ps and f"0.0.0.0:{udp_port}->7000/udp" in ps  # ranges may be grouped
    view = engine.json("inspect", name + "-a")[0]
    assert view["NetworkSettings"]["Ports"]["7000/udp"] == [{"HostIp": "0.0.0.0", "HostPort": str(udp_port)}]
    assert view["HostConfig"]["PortBindings"]["7001/tcp"] == [{"HostIp": "", "HostPort": str(base + 1)}]


def test_publish_all_exposed_ports(engine, name):
    engine("network", "create", name)
    serve(engine, name + "-p", name, 7100, "--expose", "7100", "--expose", "7200-7201/udp", "-P")
    ports = engine.json("inspect", name + "-p")[0]["NetworkSettings"]["Ports"]
    assert set(ports) == {"7100/tcp", "7200/udp", "7201/udp"}
    assert all(v and int(v[0]["HostPort"]) > 0 for v in ports.values())
    assert ask("127.0.0.1", int(ports["7100/tcp"][0]["HostPort"])).startswith("tcp ")
    # --expose without -P: shown, not published
    engine("run", "-d", "--name", name + "-e", "--network", name, "--expose", "7300", "--", "sleep", "60")
    view = engine.json("inspect", name + "-e")[0]
    assert view["NetworkSettings"]["Ports"] == {"7300/tcp": None}
    assert "7300/tcp" in engine("ps").stdout


def test_taken_ports_are_refused_before_anything_changes(engine, name):
    hport = free_port()
    engine("network", "create", name)
    engine("run", "-d", "--name", name + "-1", "--network", name, "-p", f"{hport}:80", "--", "sleep", "60")
    links_before = engine_links(engine)
    res = engine("run", "-d", "--name", name + "-2", "--network", name, "-p", f"{hport}:81", "--", "sleep", "60", check=False)
    assert res.returncode == 125
    assert res.stderr.strip() == f"Error response from daemon: Bind for 0.0.0.0:{hport}/tcp failed: port is already allocated"
    assert engine_links(engine) == links_before
    assert name + "-2" not in engine("ps", "-a").stdout

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        res = engine("run", "-d", "--network", name, "-p", f"{busy}:80", "--", "sleep", "60", check=False)
    assert res.returncode == 125
    assert res.stderr.strip() == f"Error response from daemon: Bind for 0.0.0.0:{busy}/tcp failed: address already in use by another program"
    assert engine_links(engine) == links_before

    for bad, msg in [("abc", "invalid containerPort: abc"), ("80/sctpx", "invalid proto: sctpx"),
                     ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
                     ("1.2.3:80:80", "invalid IP address: 1.2.3")]:
        res = engine("run", "--rm", "-p", bad, "--", "true", check=False)
        assert res.returncode != 0 and msg in res.stderr and len(res.stderr.strip().splitlines()) == 1, (bad, res.stderr)


def test_bindings_survive_an_engine_restart_and_go_with_stop(engine, name):
    hport = free_port()
    engine("network", "create", name)
    serve(engine, name + "-s", name, 7400, "-p", f"{hport}:7400")
    assert ask("127.0.0.1", hport).startswith("tcp ")
    engine.kill9()
    assert ask("127.0.0.1", hport).startswith("tcp ")  # the kernel's NAT needs no engine
    engine.start()
    with socket.socket() as s, pytest.raises(OSError):
        s.bind(("", hport))  # held again by the restarted engine
    assert engine("port", name + "-s", "7400").stdout.strip() == f"0.0.0.0:{hport}"
    engine("stop", "-t", "1", name + "-s")
    assert ask("127.0.0.1", hport, once=True).startswith("failed")
    assert engine.json("inspect", name + "-s")[0]["NetworkSettings"]["Ports"] == {"7400/tcp": None}
    with socket.socket() as s:
        s.bind(("", hport))
