"""``netcore volume ...``: create, ls, inspect, rm, prune."""

from __future__ import annotations


import click

from runtime.api.client import q
from runtime.cli.base import Cli, Command, Group, option, pair, pass_cli
from runtime.cli.filterflag import FORMAT_HELP, filter_option
from runtime.cli.output import confirm, each, inspect_all

__all__ = ["volume"]


@click.group(cls=Group, aliases={"list": "ls", "remove": "rm"})
def volume() -> None:
    """Manage volumes."""


@volume.command("create", cls=Command)
@option("-d", "--driver", default="local", help="Specify volume driver name (only local).")
@option("--label", "labels", multiple=True, type=pair("label"), metavar="KEY=VALUE", help="Set metadata for a volume.")
@option("-o", "--opt", "opts", multiple=True, type=pair("option"), metavar="KEY=VALUE", help="Set driver specific options.")
@click.argument("name", required=False, metavar="[VOLUME]")
@pass_cli
def create(cli: Cli, driver: str, labels: tuple[tuple[str, str], ...], opts: tuple[tuple[str, str], ...], name: str | None) -> None:
    """Create a volume."""
    body = {"Name": name or "", "Driver": driver, "Labels": dict(labels), "DriverOpts": dict(opts)}
    print(cli.client.request("POST", "/volumes/create", body)["Name"])


@volume.command("ls", cls=Command)
@filter_option()
@option("--format", "fmt", metavar="FORMAT", help=FORMAT_HELP)
@option("-q", "--quiet", is_flag=True, help="Only display volume names.")
@pass_cli
def ls(cli: Cli, filters: tuple[str, ...], fmt: str | None, quiet: bool) -> None:
    """List volumes."""
    from runtime.cli.listings import volume_ls

    volume_ls(cli, filters, fmt, quiet)


@volume.command("inspect", cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template: 'json', or a Go template.")
@click.argument("names", nargs=-1, required=True, metavar="VOLUME")
@pass_cli
def inspect(cli: Cli, fmt: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more volumes."""
    inspect_all(cli.client, "volume", names, fmt)


@volume.command("rm", cls=Command)
@option("-f", "--force", is_flag=True, help="Do not error out when a volume does not exist.")
@click.argument("names", nargs=-1, required=True, metavar="VOLUME")
@pass_cli
def rm(cli: Cli, force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more volumes. You cannot remove a volume that is in use by a container."""
    each(names, lambda name: cli.client.request("DELETE", f"/volumes/{q(name)}", query={"force": "1" if force else "0"}))


@volume.command("prune", cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones.")
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_cli
def prune(cli: Cli, all_: bool, force: bool) -> None:
    """Remove unused local volumes."""
    what = "all local volumes" if all_ else "anonymous local volumes"
    if not force and not confirm(f"WARNING! This will remove {what} not used by at least one container.\nAre you sure you want to continue?"):
        return
    from runtime.cli.image import human_size

    res = cli.client.request("POST", "/volumes/prune", query={"all": "1" if all_ else "0"})
    if res["VolumesDeleted"]:
        print("Deleted Volumes:")
        for name in res["VolumesDeleted"]:
            print(name)
        print()
    print(f"Total reclaimed space: {human_size(res['SpaceReclaimed'])}")
