"""``netcore build``: send a build context to the engine and show its progress.

As Docker's CLI does: the context directory is packed as a tar (minus what
``.dockerignore`` leaves out) and sent with the Dockerfile's path in it; the engine
builds and streams its progress, printed here on stderr as it comes.
"""

from __future__ import annotations

import json
import os
import sys

import click

from runtime.api.client import ApiError
from runtime.cli.base import Cli, Command, option, pair, pass_cli

__all__ = ["build", "run_build"]


@click.command(cls=Command)
@option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]", help="Name and optionally a tag in the 'name:tag' format (repeatable).")
@option("-f", "--file", metavar="PATH", help="Name of the Dockerfile (default: CONTEXT/Dockerfile).")
@option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE",
        help="Set a build-time variable (KEY alone: its value from the environment).")
@option("--label", "labels", multiple=True, type=pair("label"), metavar="KEY=VALUE", help="Set metadata for the image.")
@option("--target", metavar="STAGE", help="Build the stages up to this one and make its image.")
@option("--no-cache", is_flag=True, help="Do not use the cache when building the image.")
@option("-q", "--quiet", is_flag=True, help="Suppress the build output and print the image ID on success.")
@click.argument("context", metavar="CONTEXT")
@pass_cli
def build(cli: Cli, tags: tuple[str, ...], file: str | None, build_args: tuple[str, ...], labels: tuple[tuple[str, str], ...],
          target: str | None, no_cache: bool, quiet: bool, context: str) -> None:
    """Build an image from a Dockerfile."""
    run_build(cli.client, context, file, list(tags), list(build_args), no_cache, quiet, dict(labels), target)


def run_build(client, context: str, file: str | None, tags: list[str], build_args: list[str], no_cache: bool, quiet: bool,
              labels: dict[str, str] | None = None, target: str | None = None) -> None:
    """Pack the context, send it, print the progress; exits with the failing step's code."""
    from runtime.build.context import ContextError, pack_for_build

    if not os.path.isdir(context):
        raise click.ClickException(f'unable to prepare context: path "{context}" not found')
    args: dict[str, str] = {}
    for item in build_args:
        key, sep, value = item.partition("=")
        if not key:
            raise click.UsageError(f"invalid build-arg {item!r}: expected KEY=VALUE")
        if sep:
            args[key] = value
        elif key in os.environ:
            args[key] = os.environ[key]
    root = os.path.realpath(context)
    path = os.path.abspath(file) if file else os.path.join(root, "Dockerfile")
    if not os.path.isfile(path):
        raise click.ClickException(f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {path}: no such file or directory")
    try:
        data, name = pack_for_build(root, path)
    except (ContextError, OSError) as exc:
        raise click.ClickException(f"unable to prepare context: {exc}") from None
    err = sys.stderr
    if not quiet:
        err.write(f"Sending build context to netcore engine  {_human(len(data))}\n")
        err.flush()
    query = {"dockerfile": name}
    if tags:
        query["t"] = ",".join(tags)
    if args:
        query["buildargs"] = json.dumps(args)
    if no_cache:
        query["nocache"] = "1"
    if labels:
        query["labels"] = json.dumps(labels)
    if target:
        query["target"] = target
    image_id = None
    for msg in client.json_lines("/build", query, method="POST", raw=data, content_type="application/x-tar"):
        if "error" in msg:  # a step failed: Docker prints its message as is
            err.write(msg["error"] + "\n")
            sys.exit((msg.get("errorDetail") or {}).get("code") or 1)
        if "stream" in msg and not quiet:
            err.write(msg["stream"])
            err.flush()
        if "aux" in msg:
            image_id = msg["aux"].get("ID")
    if image_id is None:
        raise ApiError(0, "the engine ended the build without a result")
    if quiet:
        print(image_id)


def _human(n: float) -> str:
    """Docker's units.HumanSize: decimal units, four significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}"
        n /= 1000
    return f"{n}B"
