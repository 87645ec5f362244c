"""``--format`` of the listing commands and ``-f/--format`` of ``inspect``, as Docker's CLI has them.

A listing gives its rows as Docker's formatter contexts (``Strict`` dicts of strings, whose
unknown fields are errors) and its default table template; this module picks the output:
``table`` (that default: Docker's columns, e.g. ``ps``'s ``table {{.ID}}\\t{{.Image}}...``), ``json`` (one object a line), ``table TEMPLATE``
(a header from the field names, then columns aligned as Go's tabwriter does) or a bare
``TEMPLATE`` (one execution per row). ``\\t`` and ``\\n`` typed in a shell are tabs and
newlines, as in Docker. Every template error is one line, in Docker's words: ``template parsing
error: ...`` (a template that does not parse, or any error of ``inspect -f``), ``failed to
execute template: ...`` (a listing's row the template cannot run on).
"""

from __future__ import annotations

import json

import click

from runtime.cli.gotemplate import Strict, Template, TemplateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

__all__ = ["context", "listing", "precheck", "inspecting", "tabwriter", "is_default", "parse_template", "HEADERS"]

# Docker's header names of each listing's fields (cli/command/formatter and friends)
HEADERS: dict[str, dict[str, str]] = {
    "container": {
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
        "Networks": "NETWORKS",
    },
    "network": {
        "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
        "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
    },
    "image": {
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
        "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
    },
    "volume": {
        "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
        "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
    },
    "stats": {
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    },
    "diskusage": {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"},
}
TYPE_NAMES = {
    "container": "*formatter.ContainerContext",
    "network": "*network.formatContext",
    "image": "*image.imageContext",
    "volume": "*volume.volumeContext",
    "stats": "*container.statsContext",
    "diskusage": "*formatter.diskUsageContext",
}

# the header pass of Docker: the string functions hand their argument through unchanged
_HEADER_FUNCS = ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")


def is_default(fmt: str | None) -> bool:
    """``--format`` absent or ``table``: the command's own table."""
    return not fmt or fmt.strip() == "table"


def _prepare(fmt: str) -> tuple[bool, str]:
    table = fmt.startswith("table")
    text = fmt[len("table"):] if table else fmt
    return table, text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def parse_template(text: str, missing_key_error: bool = False) -> Template:
    try:
        return Template(text, missing_key_error=missing_key_error)
    except TemplateError as exc:
        raise click.ClickException(f"template parsing error: {exc}") from None


def _execute(tmpl: Template, data: Any, prefix: str = "failed to execute template") -> str:
    """Docker's words: ``failed to execute template: ...`` for a listing, ``template parsing error: ...`` for inspect."""
    try:
        return tmpl.execute(data)
    except TemplateError as exc:
        raise click.ClickException(f"{prefix}: {exc}") from None
    except RecursionError:
        raise click.ClickException(f"{prefix}: template nested too deeply") from None


def tabwriter(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``, Docker's table layout: a tab ends a
    cell; a column's width holds over each run of consecutive lines that have that cell."""
    lines = [line.split("\t") for line in text.split("\n")]
    cells = [len(parts) - 1 for parts in lines]  # tab-terminated cells; the rest of the line is not aligned
    widths: list[list[int]] = [[0] * n for n in cells]
    for col in range(max(cells, default=0)):
        i = 0
        while i < len(lines):
            if cells[i] <= col:
                i += 1
                continue
            j = i
            while j < len(lines) and cells[j] > col:
                j += 1
            width = max([minwidth] + [len(lines[k][col]) + padding for k in range(i, j)])
            for k in range(i, j):
                widths[k][col] = width
            i = j
    return "\n".join("".join(p.ljust(w) for p, w in zip(parts, widths[n])) + parts[-1] for n, parts in enumerate(lines))


def context(kind: str, fields: dict[str, Any], labels: dict[str, str] | None = None) -> Strict:
    """One row as Docker's context of ``kind``: ``fields`` (strings), and ``{{.Label "k"}}`` over ``labels``."""
    labels = labels or {}
    return Strict(fields, {"Label": lambda key: labels.get(key, "")}, TYPE_NAMES[kind])


def precheck(fmt: str | None) -> None:
    """Refuse a template that does not parse before asking the engine anything."""
    if not is_default(fmt) and fmt.strip() != "json":
        parse_template(_prepare(fmt)[1])


def listing(kind: str, rows: Iterable[Strict], fmt: str | None, default: str) -> None:
    """Print ``rows`` (``context``) in the output ``fmt`` asks for; ``default``: the command's
    own ``table ...`` template, Docker's (absent ``--format`` or ``table``)."""
    ctx = list(rows)
    if is_default(fmt):
        fmt = default
    assert fmt is not None
    if fmt.strip() == "json":
        for row in ctx:
            print(json.dumps(dict(row), ensure_ascii=False, separators=(",", ":")))
        return
    table, text = _prepare(fmt)
    tmpl = parse_template(text)
    out = [_execute(tmpl, row) for row in ctx]
    if not table:
        for line in out:
            print(line)
        return
    header = _header(text, kind)
    print(tabwriter("\n".join([header] + out)))


def _header(text: str, kind: str) -> str:
    """The table's first line: the template run over the header names (errors end it, as in Docker)."""
    ctx = Strict(dict(HEADERS[kind]), {"Label": _label_header}, TYPE_NAMES[kind])
    tmpl = Template(text, funcs={name: _passthrough for name in _HEADER_FUNCS})
    out: list[str] = []
    try:
        tmpl.execute(ctx, out)
    except (TemplateError, RecursionError):
        pass  # Docker prints what the header template wrote before it failed
    return "".join(out)


def _passthrough(first: Any = "", *_: Any) -> Any:
    return first


def _label_header(key: str) -> str:
    """Docker's column name of ``{{.Label "com.example.some-key"}}``: ``some key``."""
    return key.rsplit(".", 1)[-1].replace("-", " ").replace("_", " ")


def inspecting(fmt: str) -> Callable[[Sequence[Any]], None]:
    """``inspect -f``: the template parsed now (a bad one fails before any request), and the
    printer of each object through it. ``json`` is ``{{json .}}``."""
    text = "{{json .}}" if fmt.strip() == "json" else fmt.replace("\\t", "\t").replace("\\n", "\n")
    tmpl = parse_template(text, missing_key_error=True)

    def show(items: Sequence[Any]) -> None:
        for item in items:
            print(_execute(tmpl, item, "template parsing error"))

    return show
