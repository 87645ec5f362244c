"""``netcore network ...``: create, ls, inspect, rm, prune, connect, disconnect.

Each command is a function (its docstring is its summary) and, before it, the function
that declares its arguments.
"""

from __future__ import annotations

from runtime.api.client import ApiError, q
from runtime.cli import command, group, pair
from runtime.cli.output import confirm, inspect_all, json_lines, short_id, table

__all__ = ["register"]


def create_arguments(p) -> None:
    p.add_argument("-d", "--driver", default="bridge", help="Driver that manages the network (default bridge).")
    p.add_argument("--subnet", metavar="CIDR", help="Subnet in CIDR format, e.g. 10.99.0.0/24.")
    p.add_argument("--gateway", metavar="IP", help="IPv4 gateway of the subnet.")
    p.add_argument("--ip-range", metavar="CIDR", help="Allocate container addresses from this sub-range (CIDR).")
    p.add_argument("-o", "--opt", dest="opts", action="append", default=[], type=pair("option"), metavar="KEY=VALUE", help="Driver option.")
    p.add_argument("--label", dest="labels", action="append", default=[], type=pair("label"), metavar="KEY=VALUE", help="Label.")
    p.add_argument("--internal", action="store_true", help="Restrict external access to the network.")
    p.add_argument("name", metavar="NAME")


def create(cli, a) -> None:
    """Create a network."""
    config = {k: v for k, v in {"Subnet": a.subnet, "Gateway": a.gateway, "IPRange": a.ip_range}.items() if v}
    body = {
        "Name": a.name,
        "Driver": a.driver,
        "Options": dict(a.opts),
        "Labels": dict(a.labels),
        "Internal": a.internal,
        "IPAM": {"Config": [config] if config else []},
    }
    print(cli.client.request("POST", "/networks/create", body)["Id"])


def ls_arguments(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs.")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output.")
    p.add_argument("--format", default="table", choices=["table", "json"])


def ls(cli, a) -> None:
    """List networks."""
    nets = cli.client.request("GET", "/networks")
    ident = (lambda i: i) if a.no_trunc else short_id
    if a.quiet:
        for n in nets:
            print(ident(n["Id"]))
    elif a.format == "json":
        json_lines({"ID": ident(n["Id"]), "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"], "Internal": n["Internal"]} for n in nets)
    else:
        table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [(ident(n["Id"]), n["Name"], n["Driver"], n["Scope"]) for n in nets])


def networks_arguments(p) -> None:
    p.add_argument("names", nargs="+", metavar="NETWORK")


def inspect(cli, a) -> None:
    """Display detailed information on one or more networks."""
    inspect_all(cli.client, (f"/networks/{q(name)}" for name in a.names))


def rm(cli, a) -> None:
    """Remove one or more networks."""
    failed = None
    for name in a.names:
        try:
            cli.client.request("DELETE", f"/networks/{q(name)}")
            print(name)
        except ApiError as exc:
            failed = exc
    if failed:
        raise failed


def prune_arguments(p) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation.")


def prune(cli, a) -> None:
    """Remove all unused user networks."""
    if not a.force and not confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"):
        return
    deleted = cli.client.request("POST", "/networks/prune")["NetworksDeleted"]
    if deleted:
        print("Deleted Networks:")
        for name in deleted:
            print(name)


def connect_arguments(p) -> None:
    p.add_argument("--ip", metavar="IP", help="IPv4 address for the container on this network.")
    p.add_argument("--alias", dest="aliases", action="append", default=[], metavar="ALIAS", help="Network-scoped alias for the container.")
    p.add_argument("--gw-priority", type=int, default=0, metavar="N", help="Take the default route if higher than the other networks' (default 0).")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


def connect(cli, a) -> None:
    """Connect a running container to a network."""
    body = {"Container": a.container, "EndpointConfig": {"IPAddress": a.ip, "Aliases": a.aliases, "GwPriority": a.gw_priority}}
    cli.client.request("POST", f"/networks/{q(a.network)}/connect", body)


def disconnect_arguments(p) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force the container to disconnect.")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


def disconnect(cli, a) -> None:
    """Disconnect a container from a network."""
    cli.client.request("POST", f"/networks/{q(a.network)}/disconnect", {"Container": a.container, "Force": a.force})


def register(sub) -> None:
    verbs = group(sub, "network", "Manage networks.")
    command(verbs, "create", create, create_arguments)
    command(verbs, "ls", ls, ls_arguments)
    command(verbs, "inspect", inspect, networks_arguments)
    command(verbs, "rm", rm, networks_arguments)
    command(verbs, "prune", prune, prune_arguments)
    command(verbs, "connect", connect, connect_arguments)
    command(verbs, "disconnect", disconnect, disconnect_arguments)
