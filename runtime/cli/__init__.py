"""The ``netcore`` command: a thin client of the engine's API, shaped like Docker's CLI.

Only the standard library and click are imported on start-up; the engine's modules
load only for ``netcore daemon``.
"""

from __future__ import annotations

import sys

import click

from runtime.api.client import ApiError, Client

__all__ = ["main", "cli"]


class _Ctx:
    def __init__(self, host: str | None, root: str | None) -> None:
        self.host, self.root = host, root
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host, self.root)
        return self._client


@click.group(context_settings={"help_option_names": ["--help"]})
@click.option("-H", "--host", envvar="NETCORE_HOST", help="Engine socket, unix:///path (default unix:///run/netcore/netcore.sock).")
@click.option("--root", envvar="NETCORE_ROOT", help="Root dir of an engine started on demand (default /var/lib/netcore).")
@click.version_option("0.1.0", prog_name="netcore")
@click.pass_context
def cli(ctx: click.Context, host: str | None, root: str | None) -> None:
    """netcore: container networks with pluggable drivers, and a compact runtime."""
    ctx.obj = _Ctx(host, root)


@cli.command()
@click.option("--root", "daemon_root", default=None, help="Root dir for state (default /var/lib/netcore, or $NETCORE_ROOT).")
@click.option("--socket", "socket_path", default=None, help="API socket path (default /run/netcore/netcore.sock).")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--config-file", default=None, help="JSON file with the settings below (dockerd's daemon.json keys).")
@click.option("--dns", "dns", multiple=True, help="DNS server for every container, instead of the host's resolv.conf nameservers.")
@click.option("--cluster-store", default=None, help="Join a cluster whose global state is in etcd://HOST:PORT.")
@click.option("--cluster-advertise", "--advertise", "advertise", default=None, help="This host's address for the cluster (IP, IP:PORT or interface).")
@click.option("--cluster-store-opt", "store_opts", multiple=True, help="discovery.ttl=SECONDS: how long the cluster waits for a silent engine.")
@click.pass_obj
def daemon(obj: _Ctx, daemon_root, socket_path, log_level, config_file, dns, cluster_store, advertise, store_opts) -> None:
    """Run the engine in the foreground."""
    import logging
    import os

    from runtime.api.client import DEFAULT_ROOT, socket_path as parse_host
    from runtime.engine import config
    from runtime.engine.daemon import serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("pyroute2", "urllib3"):  # their debug output is every netlink message and HTTP call
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))
    root = daemon_root or obj.root or os.environ.get("NETCORE_ROOT") or DEFAULT_ROOT
    flags = {"dns": list(dns), "cluster-store": cluster_store, "cluster-advertise": advertise, "cluster-store-opts": list(store_opts)}
    try:
        settings = config.load(config_file, flags)
    except Exception as exc:  # InvalidConfig: one line, like every CLI error
        raise click.UsageError(str(exc)) from None
    serve(root, socket_path or parse_host(obj.host), settings)


def _register() -> None:
    from runtime.cli import container, network, system

    cli.add_command(network.network)
    for cmd in container.COMMANDS:
        cli.add_command(cmd)
    cli.add_command(system.system)
    cli.add_command(system.demo)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error is one line on stderr and a non-zero exit, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="netcore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code if exc.exit_code else 1)
    except click.exceptions.Abort:
        sys.exit(130)
    except ApiError as exc:
        prefix = "Error response from daemon: " if exc.status else "Error: "
        click.echo(prefix + str(exc), err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
