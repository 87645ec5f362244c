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
@click.option("--network", "--net", "networks", multiple=True, help="Connect to a network (repeatable; default bridge).")
@click.option("--ip", help="IPv4 address on the first network.")
@click.option("--network-alias", "aliases", multiple=True, help="Alias on the first network.")
@click.option("-e", "--env", "env", multiple=True, help="Set environment variable KEY=VALUE.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("--hostname", help="Container host name (default: its name).")
@click.argument("command", nargs=-1, required=True)
@click.pass_obj
def run(obj, detach, auto_remove, name, networks, ip, aliases, env, workdir, hostname, command) -> None:
    """Run a command in a new container."""
    nets = [{"name": n} for n in (networks or ("bridge",))]
    if ip:
        nets[0]["ip"] = ip
    if aliases:
        nets[0]["aliases"] = list(aliases)
    body = {
        "Name": name,
        "Cmd": list(command),
        "Env": parse_pairs(env, "environment variable") if env else {},
        "WorkingDir": workdir,
        "Hostname": hostname,
        "Networks": nets,
        "AutoRemove": auto_remove,
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


COMMANDS = (run, ps, exec_, logs, stop, rm, inspect)
