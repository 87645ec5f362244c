"""``netcore completion bash|zsh|fish``: click's own shell completion, as a script to source."""

from __future__ import annotations

import click

from runtime.cli.base import Command, choice

__all__ = ["completion"]


@click.command(cls=Command)
@click.argument("shell", type=choice("bash", "zsh", "fish"), metavar="SHELL")
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Load it in the current shell with ``eval "$(netcore completion bash)"`` (or zsh), or
    ``netcore completion fish | source``; the script asks ``netcore`` itself for the
    candidates (``_NETCORE_COMPLETE``), so new commands and flags complete with no change.
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root()
    script = get_completion_class(shell)(root.command, {}, root.info_name or "netcore", "_NETCORE_COMPLETE")
    click.echo(script.source())
