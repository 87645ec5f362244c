"""Issue 16's network modes and exit codes through the CLI, as a Docker user meets them:
``--network container:NAME``, ``network create --attachable/--aux-address`` and its
refusals, exit codes 125/126/127, Ctrl-C on an attached run, ``exec`` without ``-i``,
``disconnect`` of a stopped container, ``network rm a b``."""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import time

import pytest

from cli_engine import NETCORE, free_port, free_subnet

pytestmark = pytest.mark.root


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_exit_codes_as_dockers(engine, name, tmp_path):
    tools = tmp_path / "tools"  # commands in a -v mount: what the pre-check of the image cannot see
    tools.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    for script, body, mode in (("ok.sh", "#!/bin/sh\necho tool ran\n", 0o755), ("badint.sh", "#!/nonexistent/interp\n", 0o755),
                               ("rootonly.sh", "#!/bin/sh\necho secret\n", 0o700)):
        (tools / script).write_text(body)
        (tools / script).chmod(mode)
    mount = ["-v", f"{tools}:/tmp/tools"]
    cases = [
        # (argv, exit code, a piece of stderr)
        (["run", "--badflag", "--", "true"], 125, "Error: unrecognized arguments: --badflag"),
        (["ps", "--nosuch"], 125, "Error: unrecognized arguments: --nosuch"),
        (["run", "--sig-proxy=maybe", "--", "true"], 125, "invalid boolean value 'maybe'"),
        (["run", "--network", "nosuchnet", "--", "true"], 125, "network nosuchnet not found"),
        (["run", "-d", "--name", f"{name}nf", "--", "nosuchcmd"], 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
        (["run", "-d", "--name", f"{name}np", "--", "/etc/passwd"], 126, "permission denied"),
        (["run", "--rm", "--", "sh", "-c", "exit 3"], 3, ""),
        (["run", "--rm", "--", "sh", "-c", "exit 127"], 127, ""),  # the command's own 127: it ran
        (["run", "--rm", *mount, "--", "/tmp/tools/ok.sh"], 0, ""),
        # failing at the final execve, after the launch: the run still fails (the launcher waits for it)
        (["run", "-d", "--name", f"{name}bi", *mount, "--", "/tmp/tools/badint.sh"], 127, 'exec: "/tmp/tools/badint.sh": no such file or directory'),
        (["run", "-d", "--name", f"{name}ro", "-u", "65534", *mount, "--", "/tmp/tools/rootonly.sh"], 126,
         'exec: "/tmp/tools/rootonly.sh": permission denied'),
        (["run", "--rm", "--", "nosuchcmd"], 127, 'exec: "nosuchcmd"'),  # --rm: removed, as Docker's daemon does
    ]
    for argv, code, err in cases:
        res = engine(*argv, check=False)
        assert (res.returncode, err in res.stderr) == (code, True), (argv, res.returncode, res.stderr)
        assert res.stderr.count("\n") <= 1, res.stderr
    # Docker leaves a container whose command cannot run Created, with the code and the error
    for cname, code in ((f"{name}nf", 127), (f"{name}np", 126), (f"{name}bi", 127), (f"{name}ro", 126)):
        state = engine.json("inspect", cname)[0]["State"]
        assert (state["Status"], state["ExitCode"], state["Running"]) == ("created", code, False)
        assert "exec: " in state["Error"]
    assert f"{name}nf" in engine("ps", "-a", "--format", "json").stdout
    res = engine("start", f"{name}nf", check=False)
    assert res.returncode == 1 and 'exec: "nosuchcmd"' in res.stderr
    assert engine.json("inspect", f"{name}nf")[0]["State"]["Status"] == "created"
    engine("rm", f"{name}nf", f"{name}np", f"{name}bi", f"{name}ro")
    assert engine("ps", "-a", "-q").stdout == ""


def test_network_create_attachable_aux_address_and_refusals(engine, name):
    net = ipaddress.ip_network(free_subnet(29))  # .1 gateway, .2-.6 for containers
    hosts = [str(h) for h in net.hosts()]
    cases = [
        (["network", "create", "-d", "host", f"{name}h"], 1, 'Error response from daemon: only one instance of "host" network is allowed'),
        (["network", "create", "-d", "null", f"{name}n"], 1, 'Error response from daemon: only one instance of "null" network is allowed'),
        (["network", "create", "-d", "none", f"{name}n"], 1, 'Error response from daemon: only one instance of "none" network is allowed'),
        (["network", "create", "--subnet", str(net), "--subnet", free_subnet(), f"{name}two"], 125,
         "Error: only one --subnet per network is supported (got 2)"),
        (["network", "create", "--aux-address", f"a={hosts[1]}", f"{name}nosub"], 125, "--aux-address needs a --subnet"),
        (["network", "create", "--aux-address", "noequals", "--subnet", str(net), f"{name}bad"], 125,
         "argument --aux-address: invalid auxiliary address 'noequals': expected KEY=VALUE"),
        (["network", "create", "--subnet", str(net), "--aux-address", "a=10.255.255.1", f"{name}out"], 1, "is not a usable address of subnet"),
    ]
    for argv, code, err in cases:
        res = engine(*argv, check=False)
        assert res.returncode == code and err in res.stderr, (argv, res.returncode, res.stderr)
        assert res.stderr.count("\n") == 1 and res.stdout == ""
    names = {json.loads(line)["Name"] for line in engine("network", "ls", "--format", "json").stdout.splitlines()}
    assert not any(n.startswith(name) for n in names), names  # nothing made by a refusal
    aux = {"router": hosts[1], "printer": hosts[3]}
    engine("network", "create", "--attachable", "--subnet", str(net), *(a for k, v in aux.items() for a in ("--aux-address", f"{k}={v}")), f"{name}aux")
    view = engine.json("network", "inspect", f"{name}aux")[0]
    assert view["Attachable"] is True and view["IPAM"]["Config"][0]["AuxiliaryAddresses"] == aux
    assert engine.json("network", "inspect", "bridge")[0]["Attachable"] is False
    # fill the subnet: the aux addresses are never handed out
    got = []
    for i in range(3):
        engine("run", "-d", "--name", f"{name}c{i}", "--network", f"{name}aux", "--", "sleep", "60")
        got.append(engine.json("inspect", f"{name}c{i}")[0]["NetworkSettings"]["Networks"][f"{name}aux"]["IPAddress"])
    assert sorted(got) == [hosts[2], hosts[4], hosts[5]]
    res = engine("run", "-d", "--network", f"{name}aux", "--", "sleep", "60", check=False)
    assert res.returncode == 125 and f"no available addresses left in {net}" in res.stderr
    res = engine("run", "-d", "--network", f"name={name}aux,ip={hosts[1]}", "--", "sleep", "60", check=False)
    assert res.returncode == 125 and f"address {hosts[1]} is already in use" in res.stderr
    engine("rm", "-f", *(f"{name}c{i}" for i in range(3)))
    engine("network", "rm", f"{name}aux")


def test_container_network_mode_shares_the_others_namespace(engine, name):
    port = free_port()
    server = f"{name}srv"
    engine("run", "-d", "--name", server, "--", "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1")
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').status)"
    deadline = time.monotonic() + 20
    while (res := engine("run", "--rm", "--network", f"container:{server}", "--", "python3", "-c", fetch, check=False)).returncode:
        assert time.monotonic() < deadline, res.stderr
        time.sleep(0.1)
    assert res.stdout.strip() == "200"
    # not from a container of its own network namespace: 127.0.0.1 there is its own
    assert engine("run", "--rm", "--", "python3", "-c", fetch, check=False).returncode != 0
    side = f"{name}side"
    engine("run", "-d", "--name", side, "--network", f"container:{server}", "--", "sleep", "60")
    view, other = engine.json("inspect", side)[0], engine.json("inspect", server)[0]
    assert view["HostConfig"]["NetworkMode"] == f"container:{other['Id']}"
    assert view["NetworkSettings"]["Networks"] == {}
    assert engine("exec", side, "cat", "/etc/hostname").stdout.strip() == other["Config"]["Hostname"]
    ip = other["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert f"{ip}/" in engine("exec", side, "ip", "-o", "-4", "addr").stdout
    for flags, err in [
        (["-p", f"{free_port()}:80"], "conflicting options: port publishing and the container type network mode"),
        (["-P"], "conflicting options: port publishing and the container type network mode"),
        (["--expose", "80"], "conflicting options: port exposing and the container type network mode"),
        (["--dns", "192.0.2.1"], "conflicting options: dns and the network mode"),
        (["--hostname", "h"], "conflicting options: hostname and the network mode"),
        (["--ip", "10.1.2.3"], "user specified IP address is supported on user defined networks only"),
        (["--network-alias", "a"], "network-scoped alias is supported only for containers in user defined networks"),
        (["--network", "bridge"], "container sharing network namespace with another container or host cannot be connected"),
    ]:
        res = engine("run", "--rm", "--network", f"container:{server}", *flags, "--", "true", check=False)
        assert (res.returncode, err in res.stderr, res.stderr.count("\n")) == (125, True, 1), (flags, res.stderr)
    res = engine("run", "--rm", "--network", f"container:{name}nosuch", "--", "true", check=False)
    assert res.returncode == 125 and f"No such container: {name}nosuch" in res.stderr
    res = engine("network", "connect", "bridge", side, check=False)
    assert res.returncode == 1 and "cannot be connected to any other network" in res.stderr
    # the other stopped: a start of the joined container is refused in Docker's words, and stays so
    engine("stop", "-t", "1", side, server)
    res = engine("start", side, check=False)
    assert res.returncode == 1 and f"cannot join network of a non running container: {other['Id']}" in res.stderr
    engine("start", server)
    engine("start", side)
    assert engine.json("inspect", side)[0]["State"]["Running"] is True
    engine("rm", "-f", side, server)
    # on a user-defined network the joined container asks the embedded DNS as the other does
    net = f"{name}net"
    engine("network", "create", "--subnet", free_subnet(), net)
    engine("run", "-d", "--name", f"{name}db", "--network", net, "--", "sleep", "60")
    engine("run", "-d", "--name", f"{name}app", "--network", net, "--", "sleep", "60")
    db_ip = engine.json("inspect", f"{name}db")[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
    res = engine("run", "--rm", "--network", f"container:{name}app", "--", "getent", "hosts", f"{name}db")
    assert res.stdout.split()[0] == db_ip
    engine("rm", "-f", f"{name}db", f"{name}app")
    engine("network", "rm", net)
    assert engine("ps", "-a", "-q").stdout == ""


def _attached_run(engine, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([*NETCORE, "run", *args], env=engine.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_ctrl_c_reaches_the_container_of_an_attached_run(engine, name):
    trap = 'trap "echo got INT; exit 7" INT; trap "echo got TERM; exit 8" TERM; echo ready; while :; do sleep 0.1; done'
    for sig, code, said, flags in ((signal.SIGINT, 7, "got INT", ()), (signal.SIGTERM, 8, "got TERM", ()),
                                   (signal.SIGINT, 7, "got INT", ("-i",))):  # -i: the attach session's path
        proc = _attached_run(engine, "--rm", *flags, "--", "sh", "-c", trap)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out, err) == (code, f"{said}\n", "")
        assert engine("ps", "-a", "-q").stdout == ""  # --rm: removed
    # a second Ctrl-C is sent on as well (Docker 20.10): the client waits for the exit code
    twice = 'n=0; trap "n=\\$((n+1)); [ \\$n = 2 ] && exit 9" INT; echo ready; while :; do sleep 0.1; done'
    proc = _attached_run(engine, "--name", f"{name}twice", "--", "sh", "-c", twice)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # the first reaches the container before the second (no timing is asserted)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 9
    assert engine.json("inspect", f"{name}twice")[0]["State"]["ExitCode"] == 9
    # --sig-proxy=false: the client goes, the container runs on
    proc = _attached_run(engine, "--sig-proxy=false", "--name", f"{name}np", "--", "sh", "-c", trap)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert engine.json("inspect", f"{name}np")[0]["State"]["Running"] is True
    # attach forwards them too
    engine("run", "-d", "--name", f"{name}at", "--", "sh", "-c", 'trap "exit 5" INT; while :; do echo ready; sleep 0.2; done')
    proc = subprocess.Popen([*NETCORE, "attach", f"{name}at"], env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 5
    engine("rm", "-f", f"{name}np", f"{name}twice", f"{name}at")


def test_exec_stdin_disconnect_stopped_and_network_rm_many(engine, name, subnet):
    c = f"{name}c"
    engine("network", "create", "--subnet", subnet, f"{name}a")
    engine("network", "create", f"{name}b")
    engine("run", "-d", "--name", c, "--network", f"{name}a", "--", "sleep", "60")
    # exec without -i reads nothing: a `while read` loop feeding several execs keeps its lines
    loop = "\n".join([f"while read l; do {' '.join(NETCORE)} exec {c} echo \"line $l\"; done"])
    res = subprocess.run(["sh", "-c", loop], input="a\nb\nc\n", env=engine.env, capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout) == (0, "line a\nline b\nline c\n"), res.stderr
    assert subprocess.run([*NETCORE, "exec", "-i", c, "cat"], input="in\n", env=engine.env, capture_output=True, text=True).stdout == "in\n"
    assert subprocess.run([*NETCORE, "exec", c, "cat"], input="in\n", env=engine.env, capture_output=True, text=True).stdout == ""
    res = subprocess.run([*NETCORE, "exec", "-it", c, "true"], input="", env=engine.env, capture_output=True, text=True)
    assert (res.returncode, res.stderr) == (1, "Error: the input device is not a TTY\n")
    # ip link inside prints no "Peer netns reference is invalid"
    # (the kernel's words when `ip` asks for the id of a netns file that is no longer one: the
    # mount template keeps the engine's /run/netns out of containers)
    res = engine("exec", c, "ip", "link")
    assert "eth0@" in res.stdout and "Peer netns reference is invalid" not in res.stdout + res.stderr
    res = engine("run", "--rm", "--network", "host", "--", "ip", "link")
    assert "link-netnsid" in res.stdout and "Peer netns reference is invalid" not in res.stdout + res.stderr
    # network rm a b: what can go goes, each failure once, exit 1
    res = engine("network", "rm", f"{name}a", f"{name}b", f"{name}nosuch", "bridge", f"{name}b", check=False)
    assert res.returncode == 1 and res.stdout == f"{name}b\n"
    assert res.stderr.splitlines() == [
        f"Error response from daemon: error while removing network: network {name}a has active endpoints ({c})",
        f"Error response from daemon: network {name}nosuch not found",
        "Error response from daemon: bridge is a pre-defined network and cannot be removed",
    ]
    # disconnect a stopped container: the network leaves its config; its next start does not join it
    engine("stop", "-t", "1", c)
    engine("network", "disconnect", f"{name}a", c)
    res = engine("network", "disconnect", f"{name}a", c, check=False)
    assert res.returncode == 1 and "is not connected to network" in res.stderr
    engine("network", "rm", f"{name}a")
    engine("start", c)
    assert engine.json("inspect", c)[0]["NetworkSettings"]["Networks"] == {}
    assert "eth0" not in engine("exec", c, "ip", "-o", "link").stdout
    # and connect a stopped one: it joins at its next start
    engine("stop", "-t", "1", c)
    engine("network", "create", f"{name}d")
    engine("network", "connect", "--alias", "db", f"{name}d", c)
    res = engine("network", "connect", f"{name}d", c, check=False)
    assert (res.returncode, res.stderr) == (1, f"Error response from daemon: endpoint with name {c} already exists in network {name}d\n")
    engine("start", c)
    nets = engine.json("inspect", c)[0]["NetworkSettings"]["Networks"]
    assert list(nets) == [f"{name}d"] and "db" in nets[f"{name}d"]["Aliases"]
    assert "eth0" in engine("exec", c, "ip", "-o", "link").stdout
    engine("rm", "-f", c)
    engine("network", "rm", f"{name}d")


def test_container_network_mode_survives_an_engine_kill(engine, name):
    """The engine's restart re-adopts both containers: the joined one still shares the other's
    network namespace."""
    port = free_port()
    server, side = f"{name}srv", f"{name}side"
    engine("run", "-d", "--name", server, "--", "python3", "-m", "http.server", str(port), "--bind", "127.0.0.1")
    engine("run", "-d", "--name", side, "--network", f"container:{server}", "--", "sleep", "120")
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').status)"
    _wait_for(lambda: engine("exec", side, "python3", "-c", fetch, check=False).returncode == 0)
    engine.kill9()
    engine.start()
    views = {v["Name"].lstrip("/"): v for v in (engine.json("inspect", server, side))}
    assert views[side]["State"]["Running"] and views[server]["State"]["Running"]
    assert views[side]["HostConfig"]["NetworkMode"] == f"container:{views[server]['Id']}"
    assert engine("exec", side, "python3", "-c", fetch).stdout.strip() == "200"
    engine("rm", "-f", side, server)
    assert engine("ps", "-a", "-q").stdout == ""
