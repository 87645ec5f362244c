"""``netcore daemon``: the engine in the foreground (the only command that loads the engine)."""

from __future__ import annotations

import click

from runtime.cli.base import Cli, Command, choice, option, pass_cli

__all__ = ["daemon"]


@click.command(cls=Command)
@option("--root", "daemon_root", help="Root dir for state (default /var/lib/netcore, or $NETCORE_ROOT).")
@option("--socket", "socket_path", help="API socket path (default /run/netcore/netcore.sock).")
@option("--log-level", default="info", type=choice("debug", "info", "warning", "error"))
@option("--config-file", help="JSON file with the settings below (dockerd's daemon.json keys).")
@option("--dns", multiple=True, metavar="IP", help="DNS server for every container, instead of the host's resolv.conf nameservers.")
@option("--cluster-store", help="Join a cluster whose global state is in etcd://HOST:PORT.")
@option("--cluster-advertise", "--advertise", "advertise", help="This host's address for the cluster (IP, IP:PORT or interface).")
@option("--cluster-store-opt", "store_opts", multiple=True, metavar="KEY=VALUE",
        help="discovery.ttl=SECONDS: how long the cluster waits for a silent engine.")
@option("--docker-plugins", is_flag=True, default=None,
        help="Also serve the drivers and IPAM to a Docker Engine as its network plugins (netcore-<driver>, netcore-ipam).")
@option("--docker-plugins-dir", metavar="DIR", help="Directory of the plugin sockets (default /run/docker/plugins).")
@pass_cli
def daemon(cli: Cli, daemon_root: str | None, socket_path: str | None, log_level: str, config_file: str | None,
           dns: tuple[str, ...], cluster_store: str | None, advertise: str | None, store_opts: tuple[str, ...],
           docker_plugins: bool | None, docker_plugins_dir: str | None) -> None:
    """Run the engine in the foreground."""
    import logging

    from runtime.api.client import DEFAULT_ROOT, socket_path as parse_host
    from runtime.engine import config
    from runtime.engine.daemon import serve

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("pyroute2", "urllib3"):  # their debug output is every netlink message and HTTP call
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))
    root = daemon_root or cli.root or DEFAULT_ROOT
    flags = {"dns": list(dns), "cluster-store": cluster_store, "cluster-advertise": advertise, "cluster-store-opts": list(store_opts),
             "docker-plugins": docker_plugins, "docker-plugins-dir": docker_plugins_dir}
    try:
        settings = config.load(config_file, flags)
    except Exception as exc:  # InvalidConfig: one line, like every CLI error
        raise click.UsageError(str(exc)) from None
    from netcore import NetcoreError

    try:
        serve(root, socket_path or parse_host(cli.host), settings)
    except NetcoreError as exc:  # a second engine, a private mount namespace: one line, exit 1
        raise click.ClickException(str(exc)) from None
