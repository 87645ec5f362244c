"""The ``netcore`` command: a thin client of the engine's API, shaped like Docker's CLI.

Only the standard library is imported on start-up (argparse, json, _socket): every
command pays for the client's start, and click alone cost ~30 ms of imports, half of
a ``network ls``. The engine's modules load only for ``netcore daemon``. One module per
noun registers its commands: ``network``, ``container``, ``system``.
"""

from __future__ import annotations

import argparse
import os
import sys

from runtime.api.client import ApiError, Client

__all__ = ["main", "build_parser", "Cli", "UsageError", "Parser", "pair"]

VERSION = "0.1.0"


class UsageError(Exception):
    """Bad flags or arguments: one line on stderr, exit 2, nothing sent to the engine."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``--help`` as the only help flag (``-h`` is free), and lazy arguments.

    A command's arguments are added by its ``arguments`` function when the command is
    parsed or its help is shown: a run builds the parser of its own command only.
    """

    def __init__(self, *args, arguments=None, **kwargs) -> None:
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("allow_abbrev", False)  # like Docker: --net is an alias, not a prefix of --network
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)
        self._arguments = arguments

    def _complete(self) -> None:
        if self._arguments is not False:
            self.add_argument("--help", action="help", help="Show this message and exit.")
            if self._arguments:
                self._arguments(self)
            self._arguments = False

    def parse_known_args(self, args=None, namespace=None):
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout without ``shutil``: importing it, and asking it for the
    terminal's size for every argument declared, cost ~5 ms per run."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS") or 0) or os.get_terminal_size().columns
        except (ValueError, OSError):
            width = 80
        super().__init__(prog, width=width - 2)


class Cli:
    """What every command gets: the global options and a client made on first use."""

    def __init__(self, host: str | None, root: str | None) -> None:
        self.host, self.root = host, root
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.host, self.root)
        return self._client


def pair(what: str):
    """An argparse ``type`` for ``KEY=VALUE`` options; a value without ``=`` is an error naming it."""

    def parse(item: str) -> tuple[str, str]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"invalid {what} {item!r}: expected KEY=VALUE")
        return key, value

    return parse


def command(sub, name: str, func, arguments=None, **kwargs) -> None:
    """Add a subcommand that runs ``func(cli, args)``; ``func``'s docstring is its summary,
    ``arguments(parser)`` declares its options when it is used."""
    summary = func.__doc__.strip()
    p = sub.add_parser(name, help=summary, description=summary, arguments=arguments, **kwargs)
    p.set_defaults(func=func)


def group(sub, name: str, summary: str):
    """Add a noun (``network``, ``system``) and return the action its verbs are added to."""
    p = sub.add_parser(name, help=summary, description=summary)
    p.set_defaults(func=lambda cli, args: p.print_help())
    return p.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)


def daemon_arguments(p: Parser) -> None:
    p.add_argument("--root", dest="daemon_root", help="Root dir for state (default /var/lib/netcore, or $NETCORE_ROOT).")
    p.add_argument("--socket", dest="socket_path", help="API socket path (default /run/netcore/netcore.sock).")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--config-file", help="JSON file with the settings below (dockerd's daemon.json keys).")
    p.add_argument("--dns", action="append", default=[], metavar="IP",
                   help="DNS server for every container, instead of the host's resolv.conf nameservers.")
    p.add_argument("--cluster-store", help="Join a cluster whose global state is in etcd://HOST:PORT.")
    p.add_argument("--cluster-advertise", "--advertise", dest="advertise", help="This host's address for the cluster (IP, IP:PORT or interface).")
    p.add_argument("--cluster-store-opt", dest="store_opts", action="append", default=[], metavar="KEY=VALUE",
                   help="discovery.ttl=SECONDS: how long the cluster waits for a silent engine.")


def daemon(cli: Cli, a: argparse.Namespace) -> None:
    """Run the engine in the foreground."""
    import logging

    from runtime.api.client import DEFAULT_ROOT, socket_path as parse_host
    from runtime.engine import config
    from runtime.engine.daemon import serve

    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("pyroute2", "urllib3"):  # their debug output is every netlink message and HTTP call
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))
    root = a.daemon_root or cli.root or DEFAULT_ROOT
    flags = {"dns": a.dns, "cluster-store": a.cluster_store, "cluster-advertise": a.advertise, "cluster-store-opts": a.store_opts}
    try:
        settings = config.load(a.config_file, flags)
    except Exception as exc:  # InvalidConfig: one line, like every CLI error
        raise UsageError(str(exc)) from None
    serve(root, a.socket_path or parse_host(cli.host), settings)


def build_parser() -> Parser:
    from runtime.cli import build, container, network, system

    top = Parser(prog="netcore", description="netcore: container networks with pluggable drivers, and a compact runtime.")
    top.add_argument("-H", "--host", default=os.environ.get("NETCORE_HOST"),
                     help="Engine socket, unix:///path (default unix:///run/netcore/netcore.sock, or $NETCORE_HOST).")
    top.add_argument("--root", default=os.environ.get("NETCORE_ROOT"),
                     help="Root dir of an engine started on demand (default /var/lib/netcore, or $NETCORE_ROOT).")
    top.add_argument("--version", action="version", version=f"netcore version {VERSION}", help="Print the version and exit.")
    top.set_defaults(func=lambda cli, args: top.print_help())
    sub = top.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)

    command(sub, "daemon", daemon, daemon_arguments)
    network.register(sub)
    container.register(sub)
    build.register(sub)
    system.register(sub)
    return top


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error is one line on stderr and a non-zero exit, never a traceback."""
    try:
        args = build_parser().parse_args(argv)
        args.func(Cli(args.host, args.root), args)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ApiError as exc:
        prefix = "Error response from daemon: " if exc.status else "Error: "
        print(prefix + str(exc), file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # ``netcore ps | head``: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(0)
