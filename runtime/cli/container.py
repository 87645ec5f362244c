"""Container commands: run, ps, exec, logs, stop, rm, inspect."""

from __future__ import annotations

import json
import os
import sys

import click

from runtime.api.client import ApiError, q
from runtime.cli.network import parse_pairs
from runtime.cli.output import ago, inspect_all, json_lines, short_id, status, table

__all__ = ["COMMANDS"]


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background and print the container ID.")
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
@click.option("--name", help="Assign a name to the container.")
@click.option(
    "--network", "--net", "networks", multiple=True,
    help="Connect to a network: NAME, or name=NAME[,alias=A][,ip=IP][,gw-priority=N] (repeatable; default bridge).",
)
@click.option("--ip", help="IPv4 address on the first network.")
@click.option("--network-alias", "aliases", multiple=True, help="Network-scoped alias on the first network.")
@click.option("-p", "--publish", "publish", multiple=True, help="Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp], ranges allowed.")
@click.option("-P", "--publish-all", is_flag=True, help="Publish every exposed port to a free host port.")
@click.option("--expose", "expose", multiple=True, help="Expose a port or a range of ports: PORT[-END][/udp].")
@click.option("--dns", "dns", multiple=True, help="Upstream DNS server for names the embedded DNS does not know.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variable KEY=VALUE.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("--hostname", help="Container host name (default: its name).")
@click.argument("command", nargs=-1, required=True)
@click.pass_obj
def run(obj, detach, auto_remove, name, networks, ip, aliases, publish, publish_all, expose, dns, env, workdir, hostname, command) -> None:
    """Run a command in a new container."""
    nets = [_network_spec(n) for n in (networks or ("bridge",))]
    if ip:
        nets[0]["ip"] = ip
    if aliases:
        nets[0]["aliases"] = nets[0].get("aliases", []) + list(aliases)
    exposed, bindings = _ports(publish, expose)
    body = {
        "Name": name,
        "Cmd": list(command),
        "Env": parse_pairs(env, "environment variable") if env else {},
        "WorkingDir": workdir,
        "Hostname": hostname,
        "Networks": nets,
        "AutoRemove": auto_remove,
        "ExposedPorts": exposed,
        "PortBindings": bindings,
        "PublishAllPorts": publish_all,
        "Dns": list(dns),
    }
    client = obj.client
    try:
        created = client.request("POST", "/containers/run", body)
    except ApiError as exc:
        exc.exit_code = 125  # Docker's code for "the container could not be run"
        raise
    cid = created["Id"]
    if detach:
        click.echo(cid)
        return
    out = sys.stdout.buffer
    for chunk in client.stream(f"/containers/{cid}/logs", {"follow": "1"}):
        out.write(chunk)
        out.flush()
    code = client.request("POST", f"/containers/{cid}/wait", timeout=None)["StatusCode"]
    sys.exit(code if code is not None else 0)


def _network_spec(value: str) -> dict:
    """``--network NAME`` or Docker's ``--network name=NAME,alias=A,ip=IP,gw-priority=N``."""
    if "=" not in value:
        return {"name": value}
    spec: dict = {}
    for field in value.split(","):
        key, sep, val = field.partition("=")
        if not sep or not val:
            raise click.BadParameter(f"invalid network option {field!r}", param_hint="--network")
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
                raise click.BadParameter(f"invalid gw-priority {val!r}: expected an integer", param_hint="--network") from None
        else:
            raise click.BadParameter(f"unknown network option {key!r} (known: name, alias, ip, gw-priority)", param_hint="--network")
    if "name" not in spec:
        raise click.BadParameter(f"no network name in {value!r}", param_hint="--network")
    return spec


def _ports(publish: tuple[str, ...], expose: tuple[str, ...]) -> tuple[dict, dict]:
    """``-p`` and ``--expose`` as the API's ExposedPorts and PortBindings."""
    from runtime.portspec import PortSpecError, parse_expose, parse_publish

    exposed: dict = {}
    bindings: dict = {}
    try:
        for spec in expose:
            exposed.update(parse_expose(spec))
        for spec in publish:
            e, b = parse_publish(spec)
            exposed.update(e)
            for key, hosts in b.items():
                bindings.setdefault(key, []).extend(hosts)
    except PortSpecError as exc:
        raise click.BadParameter(str(exc), param_hint="-p/--expose") from None
    return exposed, bindings


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running).")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def ps(obj, show_all, quiet, no_trunc, fmt) -> None:
    """List containers."""
    rows = obj.client.request("GET", "/containers/json", query={"all": "1" if show_all else "0"})
    ident = (lambda i: i) if no_trunc else short_id
    if quiet:
        for r in rows:
            click.echo(ident(r["ID"]))
        return
    if fmt == "json":
        json_lines(dict(r, ID=ident(r["ID"])) for r in rows)
        return

    def command(r):
        cmd = r["Command"]
        return json.dumps(cmd if no_trunc or len(cmd) <= 20 else cmd[:19] + "…", ensure_ascii=False)

    table(
        ["CONTAINER ID", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
        [(ident(r["ID"]), command(r), ago(r["CreatedAt"]), status(r), r["Ports"], r["Names"]) for r in rows],
    )


@click.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variable KEY=VALUE.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.pass_obj
def exec_(obj, workdir, env, container, command) -> None:
    """Run a command in a running container."""
    from runtime.engine.process import ProcessInfo, exec_argv

    view = obj.client.request("GET", f"/containers/{q(container)}/json")
    if not view["State"]["Running"]:
        raise ApiError(409, f"container {view['Name'].lstrip('/')} is not running")
    info = ProcessInfo(monitor_pid=0, pid=view["State"]["Pid"], started_at=0.0)
    extra = dict(e.split("=", 1) for e in view["Config"]["Env"])
    extra.update(parse_pairs(env, "environment variable"))
    argv = exec_argv(info, list(command), workdir=workdir, env=extra)
    os.execvp(argv[0], argv)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.argument("container")
@click.pass_obj
def logs(obj, follow, container) -> None:
    """Fetch the output of a container."""
    out = sys.stdout.buffer
    for chunk in obj.client.stream(f"/containers/{q(container)}/logs", {"follow": "1" if follow else "0"}):
        out.write(chunk)
        out.flush()


def _each(obj, containers, action) -> None:
    failed = None
    for c in containers:
        try:
            action(c)
            click.echo(c)
        except ApiError as exc:
            click.echo(f"Error response from daemon: {exc}", err=True) if len(containers) > 1 else None
            failed = exc
    if failed:
        raise failed


@click.command()
@click.option("-t", "--time", "timeout", default=10, show_default=True, type=int, help="Seconds to wait before killing it.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def stop(obj, timeout, containers) -> None:
    """Stop one or more running containers."""
    _each(obj, containers, lambda c: obj.client.request("POST", f"/containers/{q(c)}/stop", query={"t": timeout}, timeout=timeout + 30))


@click.command()
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def rm(obj, force, containers) -> None:
    """Remove one or more containers."""
    _each(obj, containers, lambda c: obj.client.request("DELETE", f"/containers/{q(c)}", query={"force": "1" if force else "0"}))


@click.command()
@click.argument("containers", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, containers) -> None:
    """Display detailed information on one or more containers."""
    inspect_all(obj.client, (f"/containers/{q(c)}/json" for c in containers))


@click.command()
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_obj
def port(obj, container, private_port) -> None:
    """List port mappings, or look up the public port of PRIVATE_PORT[/PROTO]."""
    view = obj.client.request("GET", f"/containers/{q(container)}/json")
    ports = view["NetworkSettings"]["Ports"]
    if private_port:
        key = private_port if "/" in private_port else f"{private_port}/tcp"
        hosts = ports.get(key)
        if not hosts:
            raise ApiError(0, f"No public port '{key}' published for {view['Name'].lstrip('/')}")
        for h in hosts:
            click.echo(f"{h['HostIp']}:{h['HostPort']}")
        return
    for key, hosts in sorted(ports.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0])):
        for h in hosts or ():
            click.echo(f"{key} -> {h['HostIp']}:{h['HostPort']}")


COMMANDS = (run, ps, exec_, logs, stop, rm, inspect, port)
