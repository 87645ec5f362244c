"""Container commands: run, create, start, restart, attach, wait, kill, ps, exec, logs, stop, rm, inspect, port."""

from __future__ import annotations

import json
import os
import sys
from argparse import REMAINDER, ArgumentTypeError

from runtime.api.client import ApiError, q
from runtime.cli import UsageError, command, pair
from runtime.cli.output import ago, inspect_all, json_lines, short_id, status, table

__all__ = ["register"]


def _argv(a, name: str) -> list[str]:
    """The command after the options, ``--`` optional."""
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        raise UsageError(f'"netcore {name}" requires at least 1 argument')
    return cmd


def network_spec(value: str) -> dict:
    """``--network NAME`` or Docker's ``--network name=NAME,alias=A,ip=IP,gw-priority=N``."""
    if "=" not in value:
        return {"name": value}
    spec: dict = {}
    for field in value.split(","):
        key, sep, val = field.partition("=")
        if not sep or not val:
            raise ArgumentTypeError(f"invalid network option {field!r}")
        if key == "name":
            spec["name"] = val
        elif key == "alias":
            spec.setdefault("aliases", []).append(val)
        elif key == "ip":
            spec["ip"] = val
        elif key == "gw-priority":
            try:
                spec["gw_priority"] = int(val)
            except ValueError:
                raise ArgumentTypeError(f"invalid gw-priority {val!r}: expected an integer") from None
        else:
            raise ArgumentTypeError(f"unknown network option {key!r} (known: name, alias, ip, gw-priority)")
    if "name" not in spec:
        raise ArgumentTypeError(f"no network name in {value!r}")
    return spec


def _portspec(parse_name: str):
    """An argparse ``type`` for ``-p`` / ``--expose`` in Docker's notation (runtime.portspec)."""

    def parse(spec: str):
        from runtime import portspec

        try:
            return getattr(portspec, parse_name)(spec)
        except portspec.PortSpecError as exc:
            raise ArgumentTypeError(str(exc)) from None

    return parse


def run_arguments(p) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Run in the background and print the container ID.")
    p.add_argument("--rm", dest="auto_remove", action="store_true", help="Remove the container when it exits.")
    p.add_argument("--name", help="Assign a name to the container.")
    p.add_argument("--network", "--net", dest="networks", action="append", default=[], type=network_spec, metavar="NETWORK",
                   help="Connect to a network: NAME, or name=NAME[,alias=A][,ip=IP][,gw-priority=N] (repeatable; default bridge).")
    p.add_argument("--ip", metavar="IP", help="IPv4 address on the first network.")
    p.add_argument("--network-alias", dest="aliases", action="append", default=[], metavar="ALIAS", help="Network-scoped alias on the first network.")
    p.add_argument("-p", "--publish", action="append", default=[], type=_portspec("parse_publish"), metavar="SPEC",
                   help="Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp], ranges allowed.")
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish every exposed port to a free host port.")
    p.add_argument("--expose", action="append", default=[], type=_portspec("parse_expose"), metavar="PORT",
                   help="Expose a port or a range of ports: PORT[-END][/udp].")
    p.add_argument("--dns", action="append", default=[], metavar="IP", help="Upstream DNS server for names the embedded DNS does not know.")
    p.add_argument("-e", "--env", action="append", default=[], type=pair("environment variable"), metavar="KEY=VALUE", help="Set environment variable KEY=VALUE.")
    p.add_argument("-w", "--workdir", help="Working directory inside the container.")
    p.add_argument("--hostname", help="Container host name (default: its name).")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached.")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY.")
    p.add_argument("--restart", default="no", metavar="POLICY",
                   help="Restart policy when the container exits: no, on-failure[:N], always, unless-stopped (default no).")
    p.add_argument("command", nargs=REMAINDER, help="The command and its arguments.")


def _restart_policy(value: str) -> dict:
    """``--restart``'s value as the API's RestartPolicy; Docker's texts for a bad one."""
    name, sep, count = value.partition(":")
    if sep and not count.lstrip("-").isdigit():
        raise UsageError("maximum retry count must be an integer")
    return {"Name": name, "MaximumRetryCount": int(count) if sep else 0}


def _body(a, cmd: list[str]) -> dict:
    """The create / run request of ``run`` and ``create``."""
    nets = a.networks or [{"name": "bridge"}]
    if a.ip:
        nets[0]["ip"] = a.ip
    if a.aliases:
        nets[0]["aliases"] = nets[0].get("aliases", []) + a.aliases
    exposed: dict = {}
    bindings: dict = {}
    for e in a.expose:
        exposed.update(e)
    for e, b in a.publish:
        exposed.update(e)
        for key, hosts in b.items():
            bindings.setdefault(key, []).extend(hosts)
    body = {
        "Name": a.name,
        "Cmd": cmd,
        "Env": dict(a.env),
        "WorkingDir": a.workdir,
        "Hostname": a.hostname,
        "Networks": nets,
        "AutoRemove": a.auto_remove,
        "ExposedPorts": exposed,
        "PortBindings": bindings,
        "PublishAllPorts": a.publish_all,
        "Dns": a.dns,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "RestartPolicy": _restart_policy(a.restart),
    }
    if a.auto_remove and body["RestartPolicy"]["Name"] not in ("", "no"):
        raise UsageError("Conflicting options: --restart and --rm")
    return body


def run(cli, a) -> None:
    """Run a command in a new container."""
    from runtime.cli import attach

    body = _body(a, _argv(a, "run"))
    if a.tty and a.interactive and not a.detach and not attach.terminal_size_ok():
        raise UsageError("the input device is not a TTY")
    client = cli.client
    attached = not a.detach and (a.tty or a.interactive or body["RestartPolicy"]["Name"] not in ("", "no"))
    try:
        if attached:  # Docker's order: create, attach, register for the exit, start
            body["StdinOnce"] = a.interactive
            cid = client.request("POST", "/containers/create", body)["Id"]
        else:
            cid = client.request("POST", "/containers/run", body)["Id"]
    except ApiError as exc:
        exc.exit_code = 125  # Docker's code for "the container could not be run"
        raise
    if a.detach:
        print(cid)
        return
    if attached:
        try:
            code = attach.attach_and_start(client, cid, tty=a.tty, stdin=a.interactive, start=True)
        except ApiError as exc:
            exc.exit_code = 125
            if a.auto_remove:
                client.request("DELETE", f"/containers/{cid}", query={"force": "1"})
            raise
        sys.exit(code)
    out = sys.stdout.buffer
    for chunk in client.stream(f"/containers/{cid}/logs", {"follow": "1"}):
        out.write(chunk)
        out.flush()
    code = client.request("POST", f"/containers/{cid}/wait", timeout=None)["StatusCode"]
    sys.exit(code if code is not None else 0)


def ps_arguments(p) -> None:
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running).")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs.")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output.")
    p.add_argument("--format", default="table", choices=["table", "json"])


def ps(cli, a) -> None:
    """List containers."""
    rows = cli.client.request("GET", "/containers/json", query={"all": "1" if a.all else "0"})
    ident = (lambda i: i) if a.no_trunc else short_id
    if a.quiet:
        for r in rows:
            print(ident(r["ID"]))
        return
    if a.format == "json":
        json_lines(dict(r, ID=ident(r["ID"])) for r in rows)
        return

    def command_of(r):
        cmd = r["Command"]
        return json.dumps(cmd if a.no_trunc or len(cmd) <= 20 else cmd[:19] + "…", ensure_ascii=False)

    table(
        ["CONTAINER ID", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
        [(ident(r["ID"]), command_of(r), ago(r["CreatedAt"]), status(r), r["Ports"], r["Names"]) for r in rows],
    )


def exec_arguments(p) -> None:
    p.add_argument("-w", "--workdir", help="Working directory inside the container.")
    p.add_argument("-e", "--env", action="append", default=[], type=pair("environment variable"), metavar="KEY=VALUE", help="Set environment variable KEY=VALUE.")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=REMAINDER, help="The command and its arguments.")


def exec_(cli, a) -> None:
    """Run a command in a running container."""
    from runtime.engine.process import ProcessInfo, exec_argv

    cmd = _argv(a, "exec")
    view = cli.client.request("GET", f"/containers/{q(a.container)}/json")
    if not view["State"]["Running"]:
        raise ApiError(409, f"container {view['Name'].lstrip('/')} is not running")
    info = ProcessInfo(monitor_pid=0, pid=view["State"]["Pid"], started_at=0.0)
    extra = dict(e.split("=", 1) for e in view["Config"]["Env"])
    extra.update(a.env)
    argv = exec_argv(info, cmd, workdir=a.workdir, env=extra)
    os.execvp(argv[0], argv)


def logs_arguments(p) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output.")
    p.add_argument("container", metavar="CONTAINER")


def logs(cli, a) -> None:
    """Fetch the output of a container."""
    out = sys.stdout.buffer
    for chunk in cli.client.stream(f"/containers/{q(a.container)}/logs", {"follow": "1" if a.follow else "0"}):
        out.write(chunk)
        out.flush()


def _each(containers: list[str], action) -> None:
    failed = None
    for c in containers:
        try:
            action(c)
            print(c)
        except ApiError as exc:
            if len(containers) > 1:
                print(f"Error response from daemon: {exc}", file=sys.stderr)
            failed = exc
    if failed:
        raise failed


def stop_arguments(p) -> None:
    p.add_argument("-t", "--time", type=int, default=10, help="Seconds to wait before killing it (default 10).")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def stop(cli, a) -> None:
    """Stop one or more running containers."""
    _each(a.containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/stop", query={"t": a.time}, timeout=a.time + 30))


def rm_arguments(p) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL).")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes associated with the container.")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def rm(cli, a) -> None:
    """Remove one or more containers."""
    query = {"force": "1" if a.force else "0", "v": "1" if a.volumes else "0"}
    _each(a.containers, lambda c: cli.client.request("DELETE", f"/containers/{q(c)}", query=query))


def create(cli, a) -> None:
    """Create a new container."""
    body = _body(a, _argv(a, "create"))
    body["StdinOnce"] = False
    try:
        print(cli.client.request("POST", "/containers/create", body)["Id"])
    except ApiError as exc:
        exc.exit_code = 125
        raise


def start_arguments(p) -> None:
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals.")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN.")
    p.add_argument("-t", dest="tty_ignored", action="store_true", help="Accepted for the book's 'start -it': the terminal is the container's (create/run -t).")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def start(cli, a) -> None:
    """Start one or more stopped containers."""
    from runtime.cli import attach

    client = cli.client
    if a.attach or a.interactive:
        if len(a.containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        view = client.request("GET", f"/containers/{q(a.containers[0])}/json")
        cfg = view["Config"]
        if view["State"]["Running"] and not view["State"]["Restarting"]:
            code = attach.attach_and_start(client, view["Id"], tty=cfg["Tty"], stdin=a.interactive and cfg["OpenStdin"], start=False)
        else:
            if cfg["Tty"] and a.interactive and cfg["OpenStdin"] and not attach.terminal_size_ok():
                raise UsageError("the input device is not a TTY")
            code = attach.attach_and_start(client, view["Id"], tty=cfg["Tty"], stdin=a.interactive and cfg["OpenStdin"], start=True)
        sys.exit(code)
    if len(a.containers) == 1:  # one line, as every error here
        client.request("POST", f"/containers/{q(a.containers[0])}/start")
        print(a.containers[0])
        return
    failed = []
    for c in a.containers:
        try:
            client.request("POST", f"/containers/{q(c)}/start")
            print(c)
        except ApiError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            failed.append(c)
    if failed:
        raise ApiError(0, "failed to start containers: " + ", ".join(failed))


def restart_arguments(p) -> None:
    p.add_argument("-t", "--time", type=int, default=10, help="Seconds to wait for stop before killing the container (default 10).")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def restart(cli, a) -> None:
    """Restart one or more containers."""
    _each(a.containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/restart", query={"t": a.time}, timeout=a.time + 30))


def kill_arguments(p) -> None:
    p.add_argument("-s", "--signal", default="KILL", help='Signal to send to the container (default "KILL").')
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def kill(cli, a) -> None:
    """Kill one or more running containers."""
    _each(a.containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/kill", query={"signal": a.signal}))


def wait_arguments(p) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def wait(cli, a) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    failed = None
    for c in a.containers:
        try:
            code = cli.client.request("POST", f"/containers/{q(c)}/wait", timeout=None)["StatusCode"]
            print(code if code is not None else 0)
        except ApiError as exc:
            if len(a.containers) > 1:
                print(f"Error response from daemon: {exc}", file=sys.stderr)
            failed = exc
    if failed:
        raise failed


def attach_arguments(p) -> None:
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN.")
    p.add_argument("container", metavar="CONTAINER")


def attach_(cli, a) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    from runtime.cli import attach

    client = cli.client
    view = client.request("GET", f"/containers/{q(a.container)}/json")
    if not view["State"]["Running"]:
        raise ApiError(0, "You cannot attach to a stopped container, start it first")
    if view["State"]["Restarting"]:
        raise ApiError(0, "You cannot attach to a restarting container, wait until it is running")
    cfg = view["Config"]
    stdin = cfg["OpenStdin"] and not a.no_stdin
    if cfg["Tty"] and stdin and not attach.terminal_size_ok():
        raise UsageError("the input device is not a TTY")
    sys.exit(attach.attach_and_start(client, view["Id"], tty=cfg["Tty"], stdin=stdin, start=False))


def inspect_arguments(p) -> None:
    p.add_argument("containers", nargs="+", metavar="CONTAINER")


def inspect(cli, a) -> None:
    """Display detailed information on one or more containers."""
    inspect_all(cli.client, (f"/containers/{q(c)}/json" for c in a.containers))


def port_arguments(p) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def port(cli, a) -> None:
    """List port mappings, or look up the public port of PRIVATE_PORT[/PROTO]."""
    view = cli.client.request("GET", f"/containers/{q(a.container)}/json")
    ports = view["NetworkSettings"]["Ports"]
    if a.private_port:
        key = a.private_port if "/" in a.private_port else f"{a.private_port}/tcp"
        hosts = ports.get(key)
        if not hosts:
            raise ApiError(0, f"No public port '{key}' published for {view['Name'].lstrip('/')}")
        for h in hosts:
            print(f"{h['HostIp']}:{h['HostPort']}")
        return
    for key, hosts in sorted(ports.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0])):
        for h in hosts or ():
            print(f"{key} -> {h['HostIp']}:{h['HostPort']}")


def register(sub) -> None:
    command(sub, "run", run, run_arguments, usage="netcore run [OPTIONS] [--] COMMAND [ARG...]")
    command(sub, "create", create, run_arguments, usage="netcore create [OPTIONS] [--] COMMAND [ARG...]")
    command(sub, "start", start, start_arguments)
    command(sub, "restart", restart, restart_arguments)
    command(sub, "attach", attach_, attach_arguments)
    command(sub, "wait", wait, wait_arguments)
    command(sub, "kill", kill, kill_arguments)
    command(sub, "ps", ps, ps_arguments)
    command(sub, "exec", exec_, exec_arguments, usage="netcore exec [OPTIONS] CONTAINER [--] COMMAND [ARG...]")
    command(sub, "logs", logs, logs_arguments)
    command(sub, "stop", stop, stop_arguments)
    command(sub, "rm", rm, rm_arguments)
    command(sub, "inspect", inspect, inspect_arguments)
    command(sub, "port", port, port_arguments)
