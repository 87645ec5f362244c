"""Container commands besides the lifecycle: top, stats, pause, unpause, rename, cp, diff,
``container prune`` and ``image prune``, as Docker's (flags, columns, messages)."""

from __future__ import annotations

import sys

import click

from runtime.api.client import ApiError, q
from runtime.cli.base import ArgumentError, Cli, Command, option, pass_cli, rest
from runtime.cli.filterflag import encode, filter_option
from runtime.cli.output import confirm, each, table

__all__ = ["top", "stats", "pause", "unpause", "rename", "cp", "diff", "container_prune", "image_prune",
           "binary_size", "decimal_size", "render", "print_rows", "print_prune", "stats_row", "image_lines",
           "STATS_TABLE"]


def binary_size(n: float) -> str:
    """Docker's ``BytesSize``: binary units, 4 significant digits (``1.5MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n:.4g}TiB"


def decimal_size(n: float, digits: int = 3) -> str:
    """Docker's ``HumanSizeWithPrecision``: decimal units (``1.23kB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.{digits}g}{unit}"
        n /= 1000
    return f"{n:.{digits}g}TB"


def render(template: str, doc: dict) -> str:
    """A Go template over one document (``info``, ``version``, an event), as ``inspect -f``
    runs it: ``runtime.cli.formatting``'s engine, ``\\t``/``\\n`` escapes, ``json`` for ``{{json .}}``."""
    from runtime.cli import formatting

    text = "{{json .}}" if template.strip() == "json" else template.replace("\\t", "\t").replace("\\n", "\n")
    return formatting._execute(formatting.parse_template(text, missing_key_error=True), doc, "template parsing error")


def print_rows(kind: str, fmt: str | None, rows: list[dict], default: str) -> None:
    """``--format`` of ``stats`` and ``system df``: their ``table`` (``default``), ``json``,
    ``table TEMPLATE`` or a template per row (``runtime.cli.formatting``)."""
    from runtime.cli import formatting

    formatting.listing(kind, [formatting.context(kind, r) for r in rows], fmt, default)


# ---------------------------------------------------------------- top -------

@click.command(cls=Command, context_settings={"allow_interspersed_args": False})
@click.argument("container", metavar="CONTAINER")
@rest("ps_args", "[ps OPTIONS]")
@pass_cli
def top(cli: Cli, container: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of a container."""
    query = {"ps_args": " ".join(ps_args)} if ps_args else None
    res = cli.client.request("GET", f"/containers/{q(container)}/top", query=query)
    table(res["Titles"], res["Processes"])


# ---------------------------------------------------------------- stats -----

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"


def stats_row(s: dict, no_trunc: bool = False, previous: dict | None = None) -> dict:
    """One row of ``stats`` from the engine's stats message (Docker's arithmetic)."""
    cpu, pre = s["cpu_stats"], (previous or {}).get("cpu_stats") or s["precpu_stats"]
    cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
    sys_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    cpu_pct = cpu_delta / sys_delta * (cpu["online_cpus"] or 1) * 100 if sys_delta > 0 and cpu_delta > 0 else 0.0
    mem = s.get("memory_stats") or {}
    usage, limit = mem.get("usage", 0), mem.get("limit", 0)
    rx = sum(n["rx_bytes"] for n in (s.get("networks") or {}).values())
    tx = sum(n["tx_bytes"] for n in (s.get("networks") or {}).values())
    io = (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    rd = sum(e["value"] for e in io if e["op"].lower() == "read")
    wr = sum(e["value"] for e in io if e["op"].lower() == "write")
    running = bool(mem)
    return {
        "ID": s["id"] if no_trunc else s["id"][:12],
        "Container": s["id"] if no_trunc else s["id"][:12],
        "Name": s["name"].lstrip("/"),
        "CPUPerc": f"{cpu_pct:.2f}%" if running else "0.00%",
        "MemUsage": f"{binary_size(usage)} / {binary_size(limit)}" if running else "0B / 0B",
        "MemPerc": f"{usage / limit * 100:.2f}%" if running and limit else "0.00%",
        "NetIO": f"{decimal_size(rx)} / {decimal_size(tx)}" if running else "0B / 0B",
        "BlockIO": f"{decimal_size(rd)} / {decimal_size(wr)}" if running else "0B / 0B",
        "PIDs": str((s.get("pids_stats") or {}).get("current", 0)),
    }


@click.command(cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@option("--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result.")
@option("--no-trunc", is_flag=True, help="Do not truncate output.")
@option("--format", "fmt", metavar="FORMAT", help="Format output: table, json, or a Go template such as '{{.Name}} {{.CPUPerc}}'.")
@click.argument("containers", nargs=-1, metavar="[CONTAINER...]")
@pass_cli
def stats(cli: Cli, all_: bool, no_stream: bool, no_trunc: bool, fmt: str | None, containers: tuple[str, ...]) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    import threading
    import time

    client = cli.client
    names = list(containers) or [r["ID"] for r in client.request("GET", "/containers/json", query={"all": "1" if all_ else "0"})]
    if containers:
        for c in containers:  # an unknown one fails first, as Docker's
            client.request("GET", f"/containers/{q(c)}/json")
    last: dict[str, dict] = {}

    def one(ref: str, out: dict, oneshot: bool) -> None:
        try:
            out[ref] = client.request("GET", f"/containers/{q(ref)}/stats", query={"stream": "0", **({"one-shot": "1"} if oneshot else {})})
        except ApiError:
            pass  # it went meanwhile

    def sample(oneshot: bool) -> list[dict]:
        got: dict[str, dict] = {}
        threads = [threading.Thread(target=one, args=(n, got, oneshot)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = []
        for n in names:
            if n in got:
                rows.append(stats_row(got[n], no_trunc, last.get(n) if oneshot else None))
                last[n] = got[n]
        return rows

    if no_stream:
        print_rows("stats", fmt, sample(False), STATS_TABLE)
        return
    tty = sys.stdout.isatty()
    rows = sample(False)
    while True:
        if tty:
            sys.stdout.write("\033[2J\033[H")
        print_rows("stats", fmt, rows, STATS_TABLE)
        sys.stdout.flush()
        time.sleep(1.0)
        if not containers:
            names = [r["ID"] for r in client.request("GET", "/containers/json", query={"all": "1" if all_ else "0"})]
        rows = sample(True)


# ---------------------------------------------------------------- pause -----

@click.command(cls=Command)
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def pause(cli: Cli, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    each(containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/pause"))


@click.command(cls=Command)
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def unpause(cli: Cli, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    each(containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/unpause"))


@click.command(cls=Command)
@click.argument("container", metavar="CONTAINER")
@click.argument("new_name", metavar="NEW_NAME")
@pass_cli
def rename(cli: Cli, container: str, new_name: str) -> None:
    """Rename a container."""
    cli.client.request("POST", f"/containers/{q(container)}/rename", query={"name": new_name})


# ---------------------------------------------------------------- cp --------

def _split(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` or a local path (one that starts with / or . is always local)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


@click.command(cls=Command)
@option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information).")
@option("-L", "--follow-link", is_flag=True, help="Always follow symbol link in SRC_PATH.")
@option("-q", "--quiet", is_flag=True, help="Suppress progress output during copy.")
@click.argument("src", metavar="SRC")
@click.argument("dest", metavar="DEST")
@pass_cli
def cp(cli: Cli, archive: bool, follow_link: bool, quiet: bool, src: str, dest: str) -> None:
    """Copy files/folders between a container and the local filesystem.

    CONTAINER:SRC_PATH DEST_PATH|-, or SRC_PATH|- CONTAINER:DEST_PATH."""
    import tempfile

    from runtime import copyrules

    (src_c, src_path), (dst_c, dst_path) = _split(src), _split(dest)
    if src_c and dst_c:
        raise ArgumentError("copying between containers is not supported")
    if not src_c and not dst_c:
        raise ArgumentError("must specify at least one container source")
    client = cli.client
    if src_c:
        chunks = client.stream(f"/containers/{q(src_c)}/archive", {"path": src_path, "follow": "1" if follow_link else "0"})
        if dst_path == "-":
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            return
        size = 0
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                spool.write(chunk)
                size += len(chunk)
            spool.seek(0)
            try:
                copyrules.unpack(spool, dst_path, keep_owner=archive)
            except copyrules.CopyError as exc:
                raise ApiError(0, str(exc)) from None
        if not quiet:
            print(f"Successfully copied {decimal_size(size)} to {dst_path}", file=sys.stderr)
        return
    query = {"path": dst_path, "copyUIDGID": "1" if archive else "0"}
    if src_path == "-":
        client.upload(f"/containers/{q(dst_c)}/archive", 0, query={**query, "raw": "1"}, method="PUT")
        return
    with tempfile.TemporaryFile() as spool:
        try:
            copyrules.pack(src_path, spool, follow=follow_link)
        except copyrules.CopyError as exc:
            raise ApiError(0, str(exc)) from None
        size = spool.tell()
        spool.seek(0)
        client.upload(f"/containers/{q(dst_c)}/archive", spool.fileno(), query=query, method="PUT")
    if not quiet:
        print(f"Successfully copied {decimal_size(size)} to {dst_c}:{dst_path}", file=sys.stderr)


# ---------------------------------------------------------------- diff ------

@click.command(cls=Command)
@click.argument("container", metavar="CONTAINER")
@pass_cli
def diff(cli: Cli, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    for change in cli.client.request("GET", f"/containers/{q(container)}/changes") or []:
        print(f"{'CAD'[change['Kind']]} {change['Path']}")


# ---------------------------------------------------------------- prune -----

def print_prune(title: str, items: list[str], space: int | None = None) -> None:
    if items:
        print(title)
        for i in items:
            print(i)
        print()
    if space is not None:
        print(f"Total reclaimed space: {decimal_size(space)}")


@click.command("prune", cls=Command)
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@filter_option(short=False)
@pass_cli
def container_prune(cli: Cli, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    query = encode(filters)
    if not force and not confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"):
        return
    res = cli.client.request("POST", "/containers/prune", query=query or None)
    print_prune("Deleted Containers:", res["ContainersDeleted"] or [], res["SpaceReclaimed"])


def image_lines(deleted: list[dict]) -> list[str]:
    return [f"{k.lower()}: {v}" for d in deleted for k, v in d.items()]


@click.command("prune", cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones.")
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_cli
def image_prune(cli: Cli, all_: bool, force: bool) -> None:
    """Remove unused images."""
    what = ("all images without at least one container associated to them" if all_ else "all dangling images")
    if not force and not confirm(f"WARNING! This will remove {what}.\nAre you sure you want to continue?"):
        return
    res = cli.client.request("POST", "/images/prune", query={"all": "1"} if all_ else None)
    print_prune("Deleted Images:", image_lines(res["ImagesDeleted"] or []), res["SpaceReclaimed"])

