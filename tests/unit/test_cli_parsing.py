"""The CLI's parsing (no engine): Docker's flag shapes, one-line usage errors, a light start.

Commands run in click's ``CliRunner`` against a fake engine: a unix socket that records
each request (its line and JSON body) and refuses it. A usage error must never reach it.
The start-up and completion cases run ``python -m runtime.cli`` in a subprocess, as a
user would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from runtime.cli import COMMANDS, cli
from runtime.cli.container import network_spec


@pytest.fixture
def fake_engine(tmp_path):
    """A socket that answers every request with a 418 and keeps (request line, JSON body or None)."""
    path, seen = str(tmp_path / "engine.sock"), []
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                seen.append((head.split(b"\r\n")[0].decode(), json.loads(body) if body else None))
                conn.sendall(b'HTTP/1.0 418 Teapot\r\nContent-Type: application/json\r\n\r\n{"message": "refused by the fake engine"}')

    threading.Thread(target=serve, daemon=True).start()
    yield path, seen
    server.close()


def netcore(engine, *args: str, input: str | None = None):
    """``netcore ARGS`` in click's runner, talking to the fake engine (never starting a real one)."""
    return CliRunner().invoke(cli, list(args), input=input, env={"NETCORE_HOST": f"unix://{engine[0]}", "NETCORE_ROOT": None})


def requests(engine) -> list[str]:
    return [line for line, _ in engine[1]]


# Docker's exit codes for the CLI's own errors (docker/cli): a flag error is ``FlagErrorFunc``'s
# ``StatusError`` 125 (and ``run``'s refused values are 125); the positional arguments
# (``cli.RequiresMinArgs``/``ExactArgs``/``NoArgs``) and an unknown command are plain errors: exit 1.
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["network", "create", "-o", "novalue", "n"], 125, "argument -o/--opt: invalid option 'novalue': expected KEY=VALUE"),
        (["network", "create"], 1, "the following arguments are required: NAME"),
        (["network", "create", "-o"], 125, "argument -o/--opt: expected one argument"),
        (["network", "ls", "--filter", "nonsense"], 125, "argument -f/--filter: bad format of filter (expected name=value): 'nonsense'"),
        (["network", "ls", "extra"], 1, "unrecognized arguments: extra"),
        (["network", "connect", "--gw-priority", "x", "n", "c"], 125, "argument --gw-priority: invalid int value: 'x'"),
        (["network", "connect", "n"], 1, "the following arguments are required: CONTAINER"),
        (["network", "rm"], 1, "the following arguments are required: NETWORK"),
        (["run", "--rm"], 1, '"netcore run" requires at least 1 argument'),
        (["exec", "c1"], 1, '"netcore exec" requires at least 1 argument'),
        (["run", "-p", "abc", "--", "true"], 125, "argument -p/--publish: invalid containerPort: abc"),
        (["run", "--network", "name=a,gw-priority=x", "--", "true"], 125, "invalid gw-priority 'x': expected an integer"),
        (["run", "-e", "=novalue", "--", "true"], 125, "argument -e/--env: invalid environment variable: =novalue"),
        (["stop", "-t", "x", "c1"], 125, "argument -t/--time: invalid int value: 'x'"),
        (["stop"], 1, "the following arguments are required: CONTAINER"),
        (["ps", "--nosuchflag"], 125, "unrecognized arguments: --nosuchflag"),
        (["nosuchcommand"], 1, "invalid choice: 'nosuchcommand'"),
        (["-H"], 125, "argument -H/--host: expected one argument"),
        (["--bogus", "ps"], 125, "unrecognized arguments: --bogus"),
        (["network", "nosuchverb"], 1, "invalid choice: 'nosuchverb'"),
        (["container", "nosuchverb"], 1, "invalid choice: 'nosuchverb'"),
        (["completion", "tcsh"], 1, "argument SHELL: invalid choice: 'tcsh'"),
        (["run", "--netw", "n", "--", "true"], 125, "unrecognized arguments"),  # no prefix matching: --net is an alias
    ],
)
def test_bad_input_is_one_line_and_dockers_exit_code_before_any_request(fake_engine, args, code, message):
    res = netcore(fake_engine, *args)
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stderr.startswith("Error: ") and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stdout == "" and fake_engine[1] == []


def test_valid_commands_reach_the_engine_and_its_refusal_is_one_line(fake_engine):
    res = netcore(fake_engine, "network", "ls")
    assert (res.exit_code, res.stderr) == (1, "Error response from daemon: refused by the fake engine\n")
    netcore(fake_engine, "network", "rm", "a b")  # quoted in the path
    netcore(fake_engine, "stop", "-t", "3", "c1")
    res = netcore(fake_engine, "run", "--rm", "--", "true")
    assert res.exit_code == 125  # Docker's code for "could not run"
    assert requests(fake_engine) == [
        "GET /networks HTTP/1.0",
        "DELETE /networks/a%20b HTTP/1.0",
        "POST /containers/c1/stop?t=3 HTTP/1.0",
        "POST /containers/run HTTP/1.0",
    ]


def test_help_and_version(fake_engine):
    res = netcore(fake_engine, "--version")
    assert (res.exit_code, res.stdout) == (0, "netcore version 0.1.0\n")
    res = netcore(fake_engine, "run", "--help")
    assert res.exit_code == 0 and "-p SPEC, --publish SPEC" in res.stdout and "--network NETWORK, --net NETWORK" in res.stdout
    assert "netcore run [OPTIONS] IMAGE [COMMAND] [ARG...] | -- COMMAND [ARG...]" in res.stdout
    res = netcore(fake_engine, "network")
    assert res.exit_code == 0 and "disconnect" in res.stdout and "Manage networks." in res.stdout
    res = netcore(fake_engine)
    assert res.exit_code == 0 and all(name in res.stdout for name in COMMANDS)
    assert fake_engine[1] == []


def body_of(engine, *args: str) -> dict:
    """The JSON body the CLI sent for ``netcore ARGS``."""
    netcore(engine, *args)
    assert len(engine[1]) == 1, engine[1]
    return engine[1].pop()[1]


def test_run_takes_the_command_after_the_options_with_or_without_double_dash(fake_engine):
    body = body_of(fake_engine, "run", "--rm", "--network", "n", "--", "sh", "-c", "echo --rm")
    assert (body["AutoRemove"], body["Networks"], body["Cmd"]) == (True, [{"name": "n"}], ["sh", "-c", "echo --rm"])
    assert body["Image"] == "host"  # -- COMMAND: the host image
    body = body_of(fake_engine, "run", "-d", "img", "ls", "-la", "--network", "x")  # options after the image are the command's
    assert (body["Image"], body["Networks"], body["Cmd"]) == ("img", [{"name": "bridge"}], ["ls", "-la", "--network", "x"])
    body = body_of(fake_engine, "run", "-w", "/x", "-u", "app:wheel", "img")
    assert (body["Image"], body["Cmd"], body["WorkingDir"], body["User"]) == ("img", [], "/x", "app:wheel")
    body = body_of(fake_engine, "run", "--net", "name=a,alias=x", "--network-alias", "y", "--ip", "10.0.0.9",
                   "-p", "8080:80", "-e", "A=1=2", "--dns", "1.1.1.1", "--", "true")
    assert body["Networks"] == [{"name": "a", "aliases": ["x", "y"], "ip": "10.0.0.9"}]
    assert (body["Env"], body["Dns"], body["PortBindings"]) == ({"A": "1=2"}, ["1.1.1.1"], {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})


def test_run_root_filesystem_and_containment_flags(fake_engine):
    body = body_of(fake_engine, "run", "-v", "/h:/c:ro", "--mount", "type=bind,source=/a,target=/b", "--tmpfs", "/t:size=1m",
                   "--read-only", "--entrypoint", "/bin/sh", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--privileged",
                   "img", "-c", "true")
    assert body["Mounts"] == [
        {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True},
        {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": False},
        {"Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1 << 20}},
    ]
    assert (body["ReadonlyRootfs"], body["Entrypoint"], body["CapAdd"], body["CapDrop"], body["Privileged"]) == \
        (True, ["/bin/sh"], ["NET_ADMIN"], ["ALL"], True)
    assert (body["Image"], body["Cmd"]) == ("img", ["-c", "true"])


@pytest.mark.parametrize(("args", "message"), [
    (["run", "-v", "/a:/b:xx", "img"], "argument -v/--volume: invalid mode: xx"),
    (["run", "--mount", "type=bind,target=/b", "img"], "argument --mount: source is required when specifying bind mount"),
    (["run", "--tmpfs", "rel", "img"], "argument --tmpfs: invalid tmpfs path: 'rel' mount path must be absolute"),
])
def test_bad_mount_flags_are_one_line(fake_engine, args, message):
    res = netcore(fake_engine, *args)
    assert res.exit_code == 125 and message in res.stderr and res.stderr.count("\n") == 1
    assert fake_engine[1] == []


def test_network_spec_in_docker_long_form():
    assert network_spec("n") == {"name": "n"}
    assert network_spec("name=n,alias=a,alias=b,ip=10.0.0.5,gw-priority=-3") == {
        "name": "n", "aliases": ["a", "b"], "ip": "10.0.0.5", "gw_priority": -3,
    }
    with pytest.raises(ValueError, match="no network name"):
        network_spec("alias=a")


def test_repeated_options_accumulate(fake_engine):
    body = body_of(fake_engine, "network", "create", "-o", "mtu=1400", "--opt", "icc=false", "--label", "a=b", "--internal", "n")
    assert (body["Options"], body["Labels"], body["Internal"], body["Driver"]) == ({"mtu": "1400", "icc": "false"}, {"a": "b"}, True, "bridge")
    body = body_of(fake_engine, "network", "connect", "--alias", "a1", "--alias", "a2", "--gw-priority", "-2", "n", "c")
    assert body == {"Container": "c", "EndpointConfig": {"IPAddress": None, "Aliases": ["a1", "a2"], "GwPriority": -2}}


def test_prune_asks_first_and_no_answer_is_no(fake_engine):
    res = netcore(fake_engine, "network", "prune", input="")
    assert res.exit_code == 0 and "Are you sure you want to continue? [y/N]" in res.stdout and fake_engine[1] == []
    res = netcore(fake_engine, "network", "prune", input="y\n")
    assert res.exit_code == 1 and requests(fake_engine) == ["POST /networks/prune HTTP/1.0"]


def test_the_client_starts_without_heavy_imports():
    """A command loads its own module only (the lazy group), and nothing of the engine,
    http.client, urllib or the other commands' modules."""
    probe = (
        "import sys\nfrom runtime.cli import main\n"
        "try:\n    main(['network', 'create', '--help'])\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(__import__('json').dumps(sorted(sys.modules)))"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    loaded = set(json.loads(res.stderr))
    assert "runtime.cli.network" in loaded
    heavy = {"runtime.cli.container", "runtime.cli.system", "runtime.cli.daemon", "runtime.cli.completion", "runtime.portspec",
             "socket", "urllib.parse", "http.client", "email", "netcore", "pyroute2", "runtime.engine", "click.shell_completion"}
    assert loaded & heavy == set()


def test_shell_completion_comes_from_the_cli_itself(tmp_path):
    """``netcore completion bash`` prints click's script, and the completions it asks for are the CLI's own."""
    env = {"PATH": "/usr/bin:/bin", "NETCORE_HOST": f"unix://{tmp_path}/none.sock"}
    for shell in ("bash", "zsh", "fish"):
        res = subprocess.run([sys.executable, "-m", "runtime.cli", "completion", shell], capture_output=True, text=True, env=env, timeout=30)
        assert res.returncode == 0 and "_NETCORE_COMPLETE" in res.stdout, res.stderr

    def complete(*words: str) -> list[str]:
        cenv = dict(env, _NETCORE_COMPLETE="bash_complete", COMP_WORDS=" ".join(["netcore", *words]), COMP_CWORD=str(len(words)))
        res = subprocess.run([sys.executable, "-m", "runtime.cli"], capture_output=True, text=True, env=cenv, timeout=30)
        assert res.returncode == 0, res.stderr
        return [line.split(",", 1)[1] for line in res.stdout.splitlines()]

    assert complete("netw") == ["network"]
    assert set(complete("network", "")) == {"create", "ls", "inspect", "rm", "prune", "connect", "disconnect", "cni-config"}
    assert "--publish" in complete("run", "--pub")
    assert not os.path.exists(f"{tmp_path}/none.sock")  # completing never talks to (or starts) an engine


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "--restart", "on-failure:x", "--", "true"], 125, "argument --restart: maximum retry count must be an integer"),
        (["run", "--rm", "--restart", "always", "--", "true"], 125, "Conflicting options: --restart and --rm"),
        (["start", "-a", "c1", "c2"], 1, "you cannot start and attach multiple containers at once"),
        (["start"], 1, "the following arguments are required: CONTAINER"),
        (["kill", "-s"], 125, "argument -s/--signal: expected one argument"),
        (["restart", "-t", "x", "c1"], 125, "argument -t/--time: invalid int value: 'x'"),
        (["attach", "c1", "c2"], 1, "unrecognized arguments: c2"),
        (["wait"], 1, "the following arguments are required: CONTAINER"),
        (["create", "--name", "x"], 1, '"netcore create" requires at least 1 argument'),
    ],
)
def test_lifecycle_bad_input_is_one_line_and_dockers_exit_code_before_any_request(fake_engine, args, code, message):
    res = netcore(fake_engine, *args)
    assert res.exit_code == code, (res.stdout, res.stderr)  # Docker's: 125 a flag, 1 the arguments
    assert res.stderr.startswith("Error: ") and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stdout == "" and fake_engine[1] == []


def test_lifecycle_commands_reach_the_engine_in_dockers_shape(fake_engine):
    body = body_of(fake_engine, "create", "-t", "-i", "--restart", "on-failure:3", "--name", "c", "--", "sh")
    assert (body["Tty"], body["OpenStdin"], body["RestartPolicy"], body["Cmd"]) == (
        True, True, {"Name": "on-failure", "MaximumRetryCount": 3}, ["sh"])
    body = body_of(fake_engine, "run", "-dit", "--restart", "always", "--", "sh")
    assert (body["Tty"], body["OpenStdin"], body["RestartPolicy"]["Name"]) == (True, True, "always")
    for args in (("kill", "-s", "USR1", "c1"), ("restart", "-t", "3", "c1"), ("start", "c1"), ("wait", "c1"), ("rm", "-v", "c1")):
        res = netcore(fake_engine, *args)
        assert (res.exit_code, res.stderr) == (1, "Error response from daemon: refused by the fake engine\n")
    assert requests(fake_engine) == [
        "POST /containers/c1/kill?signal=USR1 HTTP/1.0",
        "POST /containers/c1/restart?t=3 HTTP/1.0",
        "POST /containers/c1/start HTTP/1.0",
        "POST /containers/c1/wait HTTP/1.0",
        "DELETE /containers/c1?force=0&v=1 HTTP/1.0",
    ]


@pytest.mark.parametrize(("args", "message"), [
    (["network", "create", "--subnet", "10.1.0.0/24", "--subnet", "10.2.0.0/24", "n"], "only one --subnet per network is supported (got 2)"),
    (["network", "create", "--aux-address", "a=10.1.0.5", "n"], "--aux-address needs a --subnet"),
    (["network", "create", "--subnet", "10.1.0.0/24", "--aux-address", "a", "n"], "invalid auxiliary address 'a': expected KEY=VALUE"),
    (["run", "--sig-proxy=maybe", "--", "true"], "argument --sig-proxy: invalid boolean value 'maybe'"),
    (["exec", "--nosuch", "c1", "true"], "unrecognized arguments: --nosuch"),
])
def test_netexit_bad_input_exits_125_before_any_request(fake_engine, args, message):
    res = netcore(fake_engine, *args)
    assert (res.exit_code, res.stdout, fake_engine[1]) == (125, "", [])
    assert res.stderr.startswith("Error: ") and message in res.stderr and res.stderr.count("\n") == 1, res.stderr


def test_netexit_flags_reach_the_engine_in_dockers_shape(fake_engine):
    body = body_of(fake_engine, "network", "create", "--attachable", "--subnet", "10.1.0.0/24",
                   "--aux-address", "r=10.1.0.5", "--aux-address", "p=10.1.0.6", "n")
    assert body["Attachable"] is True
    assert body["IPAM"]["Config"] == [{"Subnet": "10.1.0.0/24", "AuxiliaryAddresses": {"r": "10.1.0.5", "p": "10.1.0.6"}}]
    body = body_of(fake_engine, "run", "--network", "container:web", "--", "true")
    assert body["Networks"] == [{"name": "container:web"}]
    for flag in ("--sig-proxy", "--sig-proxy=false", "--sig-proxy=true"):  # optional value: `--` still ends the options
        body = body_of(fake_engine, "run", flag, "--", "echo", "x")
        assert (body["Image"], body["Cmd"]) == ("host", ["echo", "x"])
