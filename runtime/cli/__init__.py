"""The ``netcore`` command: a thin client of the engine's API on click, shaped like Docker's CLI.

Adding to the CLI
-----------------
- **A command** goes in the module of its noun (``network.py``: ``network ...``;
  ``container.py``: ``run``, ``ps``, ...; a new noun gets a new module, e.g. ``volume.py``)
  as a click command with the helpers of ``runtime.cli.base``::

      @network.command("ls")                      # a verb of a noun; top-level: @click.command(cls=Command)
      @option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
      @option("--format", type=choice("table", "json"), default="table")
      @pass_cli                                   # cli.client is the engine's API client
      def ls(cli: Cli, quiet: bool, format: str) -> None:
          \"\"\"List networks.\"\"\"                 # first line: the summary in help

  A top-level command or a new noun is named once in ``COMMANDS`` below, e.g.
  ``"volume": "runtime.cli.volume:volume"`` where ``volume.py`` has
  ``@click.group(cls=Group)`` ``def volume(): \"\"\"Manage volumes.\"\"\"`` and its verbs as
  ``@volume.command()``. Verbs of an existing noun need no entry here.
- **A flag** is an ``option(...)`` (never bare ``click.option``: it keeps Docker's help
  layout); repeatable flags take ``multiple=True``; ``KEY=VALUE`` flags ``type=pair("label")``;
  integers ``type=INT``; fixed values ``type=choice(...)``; anything parsed
  ``type=parsed(func)`` where ``func`` raises ``ValueError`` with the one-line message.
- Bad input is ``raise click.UsageError("one line")`` (exit 125, Docker's code for an error
  of the CLI itself), a wrong count of positional arguments ``raise ArgumentError(...)`` (exit 1,
  as Docker's ``cli.RequiresMinArgs``); the engine's refusals are ``ApiError`` from the client (exit 1):
  ``main`` prints either as one line.

Start-up time: every command pays for the client's start. Only click, ``runtime.cli.base``
and ``runtime.api.client`` (json and the C socket module) load before a command is chosen;
the command's own module loads when it runs or its help is shown (``Group``'s ``lazy``
table), and the engine's modules load only for ``netcore daemon`` (and ``exec``, which
builds its ``nsenter`` line with ``runtime.engine.process``).
"""

from __future__ import annotations

import sys

import click

from runtime.api.client import ApiError
from runtime.cli.base import Cli, Group, one_line, option, usage_exit

__all__ = ["main", "cli", "COMMANDS", "VERSION"]

VERSION = "0.1.0"
USAGE_EXIT = 125  # Docker's CLI: the error is the CLI's own (a bad flag), not the container's

# Top-level commands and nouns, in the order ``netcore --help`` lists them: name -> "module:attribute".
COMMANDS = {
    "daemon": "runtime.cli.daemon:daemon",
    "network": "runtime.cli.network:network",
    "run": "runtime.cli.container:run",
    "create": "runtime.cli.container:create",
    "start": "runtime.cli.container:start",
    "restart": "runtime.cli.container:restart",
    "attach": "runtime.cli.container:attach_",
    "wait": "runtime.cli.container:wait",
    "kill": "runtime.cli.container:kill",
    "ps": "runtime.cli.container:ps",
    "exec": "runtime.cli.container:exec_",
    "logs": "runtime.cli.container:logs",
    "stop": "runtime.cli.container:stop",
    "rm": "runtime.cli.container:rm",
    "inspect": "runtime.cli.container:inspect",
    "port": "runtime.cli.container:port",
    "container": "runtime.cli.containergroup:container",
    "top": "runtime.cli.ops:top",
    "stats": "runtime.cli.ops:stats",
    "pause": "runtime.cli.ops:pause",
    "unpause": "runtime.cli.ops:unpause",
    "rename": "runtime.cli.ops:rename",
    "cp": "runtime.cli.ops:cp",
    "diff": "runtime.cli.ops:diff",
    "events": "runtime.cli.system:events",
    "compose": "runtime.cli.compose:compose",
    "image": "runtime.cli.image:image",
    "images": "runtime.cli.image:ls",
    "import": "runtime.cli.image:import_",
    "load": "runtime.cli.image:load",
    "save": "runtime.cli.image:save",
    "tag": "runtime.cli.image:tag",
    "rmi": "runtime.cli.image:rmi",
    "volume": "runtime.cli.volume:volume",
    "build": "runtime.cli.build:build",
    "system": "runtime.cli.system:system",
    "info": "runtime.cli.system:info",
    "version": "runtime.cli.system:version",
    "plugins": "runtime.cli.plugins:plugins",
    "demo": "runtime.cli.system:demo",
    "completion": "runtime.cli.completion:completion",
}


class Root(Group):
    """The ``netcore`` group; its ``main`` turns every failure into one line and an exit code."""

    def main(self, args: list[str] | None = None, prog_name: str | None = None, **extra) -> None:  # type: ignore[override]
        try:
            code = super().main(args, prog_name or "netcore", standalone_mode=False, **extra)
        except click.UsageError as exc:  # Docker: 125 for a bad flag, 1 for bad arguments or an unknown command
            print(f"Error: {one_line(exc)}", file=sys.stderr)
            sys.exit(usage_exit(exc))
        except click.ClickException as exc:
            print(f"Error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except ApiError as exc:
            prefix = "Error response from daemon: " if exc.status else "Error: "
            print(prefix + str(exc), file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 1))
        except click.Abort as exc:  # Ctrl-C, or end of input at a prompt
            sys.exit(130 if isinstance(exc.__context__, KeyboardInterrupt) else 1)
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"netcore version {VERSION}")
        ctx.exit()


@click.group("netcore", cls=Root, lazy=COMMANDS, context_settings={"max_content_width": 1000},
             help="netcore: container networks with pluggable drivers, and a compact runtime.")
@option("-H", "--host", envvar="NETCORE_HOST", metavar="HOST",
        help="Engine socket, unix:///path (default unix:///run/netcore/netcore.sock, or $NETCORE_HOST).")
@option("--root", envvar="NETCORE_ROOT", metavar="ROOT",
        help="Root dir of an engine started on demand (default /var/lib/netcore, or $NETCORE_ROOT).")
@option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version, help="Print the version and exit.")
@click.pass_context
def cli(ctx: click.Context, host: str | None, root: str | None) -> None:
    ctx.obj = Cli(host, root)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every error is one line on stderr and a non-zero exit, never a traceback."""
    cli.main(argv)
