"""``netcore image ...`` and its top-level forms: images, import, load, save, tag, rmi.

Archives go to and from the engine as raw streams (``Client.upload``, ``Client.stream``):
``load -i FILE`` sends the file by sendfile, ``load`` from a pipe as it is read.
"""

from __future__ import annotations

import os
import sys
import time

import click

from runtime.api.client import ApiError, q
from runtime.cli.base import Cli, Command, Group, option, pass_cli
from runtime.cli.filterflag import FORMAT_HELP, encode, filter_option
from runtime.cli.output import each, inspect_all

__all__ = ["image", "ls", "import_", "load", "save", "tag", "rmi", "human_size"]


def human_size(size: float) -> str:
    """Docker's sizes: decimal units, three significant digits (``4.26MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.3g}{unit}"
        size /= 1000
    return f"{size:.3g}TB"


def _short(image_id: str) -> str:
    return image_id[7:19] if image_id.startswith("sha256:") else image_id


def _stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


def _repo_tag(ref: str) -> tuple[str, str]:
    slash, colon = ref.rfind("/"), ref.rfind(":")
    return (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, "latest")


def _rows(images: list[dict], match: str | None) -> list[tuple[dict, str, str]]:
    rows = []
    for img in images:
        for ref in img["RepoTags"] or ["<none>:<none>"]:
            repo, tag = _repo_tag(ref)
            if match:
                want_repo, _, want_tag = match.partition(":")
                if repo != want_repo or (want_tag and tag != want_tag):
                    continue
            rows.append((img, repo, tag))
    return rows


@click.group(cls=Group, aliases={"list": "ls", "remove": "rm"},
             lazy={"prune": "runtime.cli.ops:image_prune", "build": "runtime.cli.build:build"})
def image() -> None:
    """Manage images."""


@image.command("ls", cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Show all images (there are no intermediate images to hide).")
@filter_option()
@option("--format", "fmt", metavar="FORMAT", help=FORMAT_HELP)
@option("--no-trunc", is_flag=True, help="Don't truncate output.")
@option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@pass_cli
def ls(cli: Cli, all_: bool, filters: tuple[str, ...], fmt: str | None, no_trunc: bool, quiet: bool, reference: str | None) -> None:
    """List images."""
    from runtime.cli.listings import images, precheck

    precheck(fmt)
    rows = _rows(cli.client.request("GET", "/images/json", query=encode(filters)), reference)
    ident = (lambda i: i) if no_trunc else _short
    if quiet:
        for i in dict.fromkeys(ident(img["Id"]) for img, _, _ in rows):
            print(i)
        return
    images(rows, fmt, ident, human_size, _stamp)


@image.command("inspect", cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template: 'json', or a Go template.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE")
@pass_cli
def inspect(cli: Cli, fmt: str | None, images: tuple[str, ...]) -> None:
    """Display detailed information on one or more images."""
    inspect_all(cli.client, "image", images, fmt)


def _open_input(path: str) -> int:
    if path == "-":
        if sys.stdin.isatty():
            raise click.UsageError("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe")
        return sys.stdin.fileno()
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise click.UsageError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None


@image.command("import", cls=Command)
@option("-m", "--message", default="", help="Set commit message for imported image.")
@click.argument("source", metavar="file|-")
@click.argument("reference", required=False, metavar="[REPOSITORY[:TAG]]")
@pass_cli
def import_(cli: Cli, message: str, source: str, reference: str | None) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    query = {"fromSrc": "-", "message": message}
    if reference:
        repo, tag = _repo_tag(reference)
        query.update(repo=repo, tag=tag)
    fd = _open_input(source)
    print(cli.client.upload("/images/create", fd, query)["Id"])


@image.command("load", cls=Command)
@option("-i", "--input", "input_", default="-", metavar="FILE", help="Read from tar archive file, instead of STDIN.")
@option("-q", "--quiet", is_flag=True, help="Suppress the load output.")
@pass_cli
def load(cli: Cli, input_: str, quiet: bool) -> None:
    """Load an image from a tar archive (docker save or OCI layout) or STDIN."""
    fd = _open_input(input_)
    for line in cli.client.upload("/images/load", fd)["Loaded"]:
        if not quiet:
            print(line)


@image.command("save", cls=Command)
@option("-o", "--output", metavar="FILE", help="Write to a file, instead of STDOUT.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE")
@pass_cli
def save(cli: Cli, output: str | None, images: tuple[str, ...]) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    if output is None and sys.stdout.isatty():
        raise click.UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    chunks = _whole(cli.client.stream("/images/get", {"names": ",".join(images)}))
    if output is None:
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return
    tmp = f"{output}.tmp{os.getpid()}"  # the file appears only whole
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _whole(chunks):
    """The archive's chunks; an error if it ends before its end-of-archive blocks (the engine
    failed half-way: it can no longer answer with an error)."""
    size, tail = 0, b""
    for chunk in chunks:
        size += len(chunk)
        tail = (tail + chunk)[-1024:]
        yield chunk
    if size % 512 or size < 1024 or tail.count(0) != 1024:
        raise ApiError(0, "the archive from the engine was cut short (see the engine's log)")


@image.command("tag", cls=Command)
@click.argument("source", metavar="SOURCE_IMAGE[:TAG]")
@click.argument("target", metavar="TARGET_IMAGE[:TAG]")
@pass_cli
def tag(cli: Cli, source: str, target: str) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    repo, tag_ = _repo_tag(target)
    cli.client.request("POST", f"/images/{q(source)}/tag", query={"repo": repo, "tag": tag_})


@image.command("rm", cls=Command)
@option("-f", "--force", is_flag=True, help="Force removal of the image.")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE")
@pass_cli
def rmi(cli: Cli, force: bool, images: tuple[str, ...]) -> None:
    """Remove one or more images."""
    def report(_ref: str, deleted: list[dict[str, str]]) -> None:
        for item in deleted:
            for key, value in item.items():
                print(f"{key}: {value}")

    each(images, lambda ref: cli.client.request("DELETE", f"/images/{q(ref)}", query={"force": "1" if force else "0"}), report)
