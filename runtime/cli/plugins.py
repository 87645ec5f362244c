"""``netcore plugins``: the network and IPAM drivers the engine loaded, and where they come from."""

from __future__ import annotations

import click

from runtime.cli.base import Cli, Command, choice, option, pass_cli
from runtime.cli.output import json_lines, table

__all__ = ["plugins"]


@click.command(cls=Command)
@option("-q", "--quiet", is_flag=True, help="Only display plugin names.")
@option("--format", "fmt", default="table", type=choice("table", "json"))
@pass_cli
def plugins(cli: Cli, quiet: bool, fmt: str) -> None:
    """List the engine's network and IPAM drivers with their distribution and version."""
    rows = cli.client.request("GET", "/plugins")
    if quiet:
        for name in dict.fromkeys(r["Name"] for r in rows):
            print(name)
    elif fmt == "json":
        json_lines(rows)
    else:
        table(["NAME", "KIND", "DISTRIBUTION", "VERSION"], [(r["Name"], r["Kind"], r["Distribution"] or "-", r["Version"] or "-") for r in rows])
