"""``netcore network ...``: create, ls, inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import click

from runtime.api.client import ApiError, q
from runtime.cli.output import inspect_all, json_lines, short_id, table

__all__ = ["network", "parse_pairs"]


def parse_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``k=v`` options into a dict; a value without ``=`` is an error naming it."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


@click.group()
def network() -> None:
    """Manage networks."""


@network.command("create")
@click.option("-d", "--driver", default="bridge", show_default=True, help="Driver that manages the network.")
@click.option("--subnet", help="Subnet in CIDR format, e.g. 10.99.0.0/24.")
@click.option("--gateway", help="IPv4 gateway of the subnet.")
@click.option("--ip-range", help="Allocate container addresses from this sub-range (CIDR).")
@click.option("-o", "--opt", "opts", multiple=True, help="Driver option KEY=VALUE.")
@click.option("--label", "labels", multiple=True, help="Label KEY=VALUE.")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.argument("name")
@click.pass_obj
def create(obj, driver, subnet, gateway, ip_range, opts, labels, internal, name) -> None:
    """Create a network."""
    config = {k: v for k, v in {"Subnet": subnet, "Gateway": gateway, "IPRange": ip_range}.items() if v}
    body = {
        "Name": name,
        "Driver": driver,
        "Options": parse_pairs(opts, "option"),
        "Labels": parse_pairs(labels, "label"),
        "Internal": internal,
        "IPAM": {"Config": [config] if config else []},
    }
    click.echo(obj.client.request("POST", "/networks/create", body)["Id"])


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def ls(obj, quiet, no_trunc, fmt) -> None:
    """List networks."""
    nets = obj.client.request("GET", "/networks")
    ident = (lambda i: i) if no_trunc else short_id
    if quiet:
        for n in nets:
            click.echo(ident(n["Id"]))
    elif fmt == "json":
        json_lines({"ID": ident(n["Id"]), "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"], "Internal": n["Internal"]} for n in nets)
    else:
        table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [(ident(n["Id"]), n["Name"], n["Driver"], n["Scope"]) for n in nets])


@network.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def inspect(obj, names) -> None:
    """Display detailed information on one or more networks."""
    inspect_all(obj.client, (f"/networks/{q(name)}" for name in names))


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def rm(obj, names) -> None:
    """Remove one or more networks."""
    failed = None
    for name in names:
        try:
            obj.client.request("DELETE", f"/networks/{q(name)}")
            click.echo(name)
        except ApiError as exc:
            failed = exc
    if failed:
        raise failed


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.pass_obj
def prune(obj, force) -> None:
    """Remove all unused user networks."""
    if not force and not click.confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"):
        return
    deleted = obj.client.request("POST", "/networks/prune")["NetworksDeleted"]
    if deleted:
        click.echo("Deleted Networks:")
        for name in deleted:
            click.echo(name)


@network.command("connect")
@click.option("--ip", help="IPv4 address for the container on this network.")
@click.option("--alias", "aliases", multiple=True, help="Network-scoped alias for the container.")
@click.option("--gw-priority", type=int, default=0, help="Take the default route if higher than the other networks' (default 0).")
@click.argument("net")
@click.argument("container")
@click.pass_obj
def connect(obj, ip, aliases, gw_priority, net, container) -> None:
    """Connect a running container to a network."""
    body = {"Container": container, "EndpointConfig": {"IPAddress": ip, "Aliases": list(aliases), "GwPriority": gw_priority}}
    obj.client.request("POST", f"/networks/{q(net)}/connect", body)


@network.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect.")
@click.argument("net")
@click.argument("container")
@click.pass_obj
def disconnect(obj, force, net, container) -> None:
    """Disconnect a container from a network."""
    obj.client.request("POST", f"/networks/{q(net)}/disconnect", {"Container": container, "Force": force})
