"""``netcore network ...``: create, ls, inspect, rm, prune, connect, disconnect, cni-config."""

from __future__ import annotations


import click

from runtime.api.client import q
from runtime.cli.base import INT, Cli, Group, choice, option, pair, pass_cli
from runtime.cli.filterflag import FORMAT_HELP, encode, filter_option
from runtime.cli.output import confirm, each, inspect_all

__all__ = ["network"]


@click.group(cls=Group, aliases={"list": "ls", "remove": "rm"})
def network() -> None:
    """Manage networks."""


@network.command()
@option("-d", "--driver", default="bridge", help="Driver that manages the network (default bridge).")
@option("--subnet", "subnets", multiple=True, metavar="CIDR", help="Subnet in CIDR format, e.g. 10.99.0.0/24 (one per network).")
@option("--gateway", metavar="IP", help="IPv4 gateway of the subnet.")
@option("--ip-range", metavar="CIDR", help="Allocate container addresses from this sub-range (CIDR).")
@option("-o", "--opt", "opts", multiple=True, type=pair("option"), metavar="KEY=VALUE", help="Driver option.")
@option("--label", "labels", multiple=True, type=pair("label"), metavar="KEY=VALUE", help="Label.")
@option("--aux-address", "aux", multiple=True, type=pair("auxiliary address"), metavar="NAME=IP",
        help="Reserve an address of the subnet under a name: IPAM never hands it out.")
@option("--attachable", is_flag=True, help="Enable manual container attachment (recorded and shown, as Docker's).")
@option("--internal", is_flag=True, help="Restrict external access to the network.")
@option("--ipam-driver", default="default", metavar="DRIVER", help="IP Address Management Driver (default \"default\").")
@click.argument("name", metavar="NAME")
@pass_cli
def create(cli: Cli, driver: str, subnets: tuple[str, ...], gateway: str | None, ip_range: str | None,
           opts: tuple[tuple[str, str], ...], labels: tuple[tuple[str, str], ...], aux: tuple[tuple[str, str], ...],
           attachable: bool, internal: bool, ipam_driver: str, name: str) -> None:
    """Create a network."""
    if len(subnets) > 1:  # Docker takes several; netcore's networks have one: refused, never dropped
        raise click.UsageError(f"only one --subnet per network is supported (got {len(subnets)})")
    if aux and not subnets:
        raise click.UsageError("--aux-address needs a --subnet to reserve it in")
    fields = {"Subnet": subnets[0] if subnets else None, "Gateway": gateway, "IPRange": ip_range,
              "AuxiliaryAddresses": dict(aux) or None}
    config = {k: v for k, v in fields.items() if v}
    body = {
        "Attachable": attachable,
        "Name": name,
        "Driver": driver,
        "Options": dict(opts),
        "Labels": dict(labels),
        "Internal": internal,
        "IPAM": {"Driver": ipam_driver, "Config": [config] if config else []},
    }
    print(cli.client.request("POST", "/networks/create", body)["Id"])


@network.command()
@filter_option()
@option("--format", "fmt", metavar="FORMAT", help=FORMAT_HELP)
@option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@pass_cli
def ls(cli: Cli, filters: tuple[str, ...], fmt: str | None, no_trunc: bool, quiet: bool) -> None:
    """List networks."""
    from runtime.cli.listings import network_ls

    network_ls(cli, filters, fmt, no_trunc, quiet)


@network.command()
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template: 'json', or a Go template.")
@click.argument("names", nargs=-1, required=True, metavar="NETWORK")
@pass_cli
def inspect(cli: Cli, fmt: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more networks."""
    inspect_all(cli.client, "network", names, fmt)


@network.command()
@click.argument("names", nargs=-1, required=True, metavar="NETWORK")
@pass_cli
def rm(cli: Cli, names: tuple[str, ...]) -> None:
    """Remove one or more networks: every one that can go goes; each failure is one line."""
    each(names, lambda name: cli.client.request("DELETE", f"/networks/{q(name)}"))


@network.command()
@filter_option(short=False)
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_cli
def prune(cli: Cli, filters: tuple[str, ...], force: bool) -> None:
    """Remove all unused user networks."""
    if not force and not confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"):
        return
    deleted = cli.client.request("POST", "/networks/prune", query=encode(filters))["NetworksDeleted"]
    if deleted:
        print("Deleted Networks:")
        for name in deleted:
            print(name)


@network.command()
@option("--ip", metavar="IP", help="IPv4 address for the container on this network.")
@option("--alias", "aliases", multiple=True, metavar="ALIAS", help="Network-scoped alias for the container.")
@option("--gw-priority", type=INT, default=0, metavar="N", help="Take the default route if higher than the other networks' (default 0).")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container", metavar="CONTAINER")
@pass_cli
def connect(cli: Cli, ip: str | None, aliases: tuple[str, ...], gw_priority: int, network_name: str, container: str) -> None:
    """Connect a running container to a network."""
    body = {"Container": container, "EndpointConfig": {"IPAddress": ip, "Aliases": list(aliases), "GwPriority": gw_priority}}
    cli.client.request("POST", f"/networks/{q(network_name)}/connect", body)


@network.command()
@option("-f", "--force", is_flag=True, help="Force the container to disconnect.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container", metavar="CONTAINER")
@pass_cli
def disconnect(cli: Cli, force: bool, network_name: str, container: str) -> None:
    """Disconnect a container from a network."""
    cli.client.request("POST", f"/networks/{q(network_name)}/disconnect", {"Container": container, "Force": force})


@network.command("cni-config")
@option("--cni-version", default="1.0.0", type=choice("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"),
        help="cniVersion of the conflist (podman 4.3 takes up to 1.0.0).")
@click.argument("name", metavar="NETWORK")
@pass_cli
def cni_config(cli: Cli, cni_version: str, name: str) -> None:
    """Print a CNI conflist that puts a CNI runtime's containers on a network (netcore-cni)."""
    import json
    import os

    from runtime.cni.conflist import conflist

    net = cli.client.request("GET", f"/networks/{q(name)}")
    click.echo(json.dumps(conflist(net["Name"], os.path.abspath(cli.client.path), cni_version), indent=2))
