"""The CLI's parsing (no engine): Docker's flag shapes, one-line usage errors, a light start.

Each case runs ``python -m runtime.cli`` in a subprocess, as a user would, against a
fake engine: a unix socket that records the request and refuses it. A usage error must
never reach it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

from runtime.cli import UsageError, build_parser
from runtime.cli.container import network_spec


@pytest.fixture
def fake_engine(tmp_path):
    """A socket that answers every request with a 418 and keeps the request lines."""
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
                seen.append(conn.recv(65536).split(b"\r\n")[0].decode())
                conn.sendall(b'HTTP/1.0 418 Teapot\r\nContent-Type: application/json\r\n\r\n{"message": "refused by the fake engine"}')

    threading.Thread(target=serve, daemon=True).start()
    yield path, seen
    server.close()


def netcore(engine, *args: str) -> subprocess.CompletedProcess:
    env = {"NETCORE_HOST": f"unix://{engine[0]}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "runtime.cli", *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["network", "create", "-o", "novalue", "n"], "argument -o/--opt: invalid option 'novalue': expected KEY=VALUE"),
        (["network", "create"], "the following arguments are required: NAME"),
        (["network", "ls", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["network", "connect", "--gw-priority", "x", "n", "c"], "argument --gw-priority: invalid int value: 'x'"),
        (["run", "--rm"], '"netcore run" requires at least 1 argument'),
        (["run", "-p", "abc", "--", "true"], "argument -p/--publish: invalid containerPort: abc"),
        (["run", "--network", "name=a,gw-priority=x", "--", "true"], "invalid gw-priority 'x': expected an integer"),
        (["run", "-e", "NOVALUE", "--", "true"], "invalid environment variable 'NOVALUE'"),
        (["ps", "--nosuchflag"], "unrecognized arguments: --nosuchflag"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        (["run", "--netw", "n", "--", "true"], "unrecognized arguments"),  # no prefix matching: --net is an alias
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_request(fake_engine, args, message):
    res = netcore(fake_engine, *args)
    assert res.returncode == 2, res
    assert res.stderr.startswith("Error: ") and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert res.stdout == "" and fake_engine[1] == []


def test_valid_commands_reach_the_engine_and_its_refusal_is_one_line(fake_engine):
    res = netcore(fake_engine, "network", "ls")
    assert (res.returncode, res.stderr) == (1, "Error response from daemon: refused by the fake engine\n")
    netcore(fake_engine, "network", "rm", "a b")  # quoted in the path
    netcore(fake_engine, "stop", "-t", "3", "c1")
    res = netcore(fake_engine, "run", "--rm", "--", "true")
    assert res.returncode == 125  # Docker's code for "could not run"
    assert fake_engine[1] == [
        "GET /networks HTTP/1.0",
        "DELETE /networks/a%20b HTTP/1.0",
        "POST /containers/c1/stop?t=3 HTTP/1.0",
        "POST /containers/run HTTP/1.0",
    ]


def test_help_and_version(fake_engine):
    res = netcore(fake_engine, "--version")
    assert (res.returncode, res.stdout) == (0, "netcore version 0.1.0\n")
    res = netcore(fake_engine, "run", "--help")
    assert res.returncode == 0 and "-p SPEC, --publish SPEC" in res.stdout and "--network NETWORK, --net NETWORK" in res.stdout
    res = netcore(fake_engine, "network")
    assert res.returncode == 0 and "disconnect" in res.stdout and "Manage networks." in res.stdout
    assert fake_engine[1] == []


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_run_takes_the_command_after_the_options_with_or_without_double_dash():
    a = parse("run", "--rm", "--network", "n", "--", "sh", "-c", "echo --rm")
    assert (a.auto_remove, a.command) == (True, ["--", "sh", "-c", "echo --rm"])
    a = parse("run", "-d", "ls", "-la", "--network", "x")  # options after the command are the command's
    assert (a.detach, a.networks, a.command) == (True, [], ["ls", "-la", "--network", "x"])


def test_network_spec_in_docker_long_form():
    assert network_spec("n") == {"name": "n"}
    assert network_spec("name=n,alias=a,alias=b,ip=10.0.0.5,gw-priority=-3") == {
        "name": "n", "aliases": ["a", "b"], "ip": "10.0.0.5", "gw_priority": -3,
    }
    with pytest.raises(Exception, match="no network name"):
        network_spec("alias=a")


def test_repeated_options_accumulate():
    a = parse("network", "create", "-o", "mtu=1400", "--opt", "icc=false", "--label", "a=b", "--internal", "n")
    assert (dict(a.opts), dict(a.labels), a.internal, a.driver) == ({"mtu": "1400", "icc": "false"}, {"a": "b"}, True, "bridge")
    with pytest.raises(UsageError):
        parse("network", "rm")


def test_the_client_starts_without_heavy_imports():
    """click, typing, socket.py, urllib and the engine's modules stay off every command's start."""
    probe = (
        "import sys\nfrom runtime.cli import main\n"
        "try:\n    main(['network', 'create', '--help'])\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(__import__('json').dumps(sorted(sys.modules)))"
    )
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    loaded = set(json.loads(res.stderr))
    heavy = {"click", "typing", "socket", "shutil", "urllib.parse", "http.client", "email", "netcore", "pyroute2", "runtime.engine"}
    assert loaded & heavy == set()
