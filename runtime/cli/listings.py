"""The rows of ``ps``, ``network ls``, ``images`` and ``volume ls`` as Docker's formatter contexts.

Each listing turns the engine's JSON into Docker's fields (strings, as ``{{json .}}`` shows
them: ``.ID .Names .RunningFor ...``) and hands them to ``runtime.cli.formatting``, which
prints the command's own table, ``json`` or a Go template. The command modules keep their
flags; the work behind ``ps`` and the contexts live here, shared by the aliases
(``container ls``, ``image ls``) that call the same functions.
"""

from __future__ import annotations

import json
import time

from runtime.cli.filterflag import encode
from runtime.cli.formatting import context, listing, precheck
from runtime.cli.output import ago, short_id, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runtime.cli.base import Cli

__all__ = ["ps", "network_ls", "volume_ls", "images", "precheck", "container_row", "network_row", "volume_row", "labels_text", "created_at"]

# Docker's default tables (cli/command/formatter): the same path as a user's ``table`` template
PS_TABLE = "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}"


def labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (labels or {}).items())


def created_at(stamp: str | None) -> str:
    """Docker's ``CreatedAt``: Go's ``time.Time.String()`` of the creation, in UTC."""
    if not stamp:
        return ""
    from datetime import datetime, timezone

    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").astimezone(timezone.utc)
    except ValueError:
        return stamp
    return when.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _size(row: dict[str, Any]) -> str:
    from runtime.cli.image import human_size

    if "SizeRw" not in row:  # not asked for: Docker shows its zero
        return "0B"
    rw = human_size(row["SizeRw"])
    return f"{rw} (virtual {human_size(row['SizeRootFs'])})" if row.get("SizeRootFs") else rw


def container_row(r: dict[str, Any], no_trunc: bool = False) -> Any:
    """One ``ps`` row as Docker's ``ContainerContext``."""
    cmd = r["Command"]
    return context("container", {
        "Command": json.dumps(cmd if no_trunc or len(cmd) <= 20 else cmd[:19] + "…", ensure_ascii=False),
        "CreatedAt": created_at(r["CreatedAt"]),
        "ID": r["ID"] if no_trunc else short_id(r["ID"]),
        "Image": r.get("Image", ""),
        "Labels": labels_text(r.get("Labels")),
        "LocalVolumes": str(r.get("LocalVolumes", 0)),
        "Mounts": ",".join(r.get("Mounts") or ()),
        "Names": r["Names"],
        "Networks": r.get("Networks", ""),
        "Ports": r["Ports"],
        "RunningFor": ago(r["CreatedAt"]),
        "Size": _size(r),
        "State": r["State"],
        "Status": status(r),
    }, r.get("Labels"))


def ps(cli: Cli, all_: bool, filters: tuple[str, ...], fmt: str | None, last: int, latest: bool, no_trunc: bool,
       quiet: bool, size: bool) -> None:
    """``ps``: the query (filters, limit, size) for the engine, then the output ``fmt`` asks for."""
    precheck(fmt)
    query = {"all": "1" if all_ else "0", **encode(filters)}
    limit = 1 if latest else last
    if limit > 0:
        query["limit"] = str(limit)
    if size or (fmt and ".Size" in fmt):
        query["size"] = "1"
    rows = cli.client.request("GET", "/containers/json", query=query)
    if quiet:
        for r in rows:
            print(r["ID"] if no_trunc else short_id(r["ID"]))
        return

    listing("container", (container_row(r, no_trunc) for r in rows), fmt, PS_TABLE + ("\\t{{.Size}}" if size else ""))


def network_row(n: dict[str, Any], no_trunc: bool = False) -> Any:
    """One ``network ls`` row as Docker's network context."""
    return context("network", {
        "CreatedAt": created_at(n.get("Created")),
        "Driver": n["Driver"],
        "ID": n["Id"] if no_trunc else short_id(n["Id"]),
        "IPv6": "true" if n.get("EnableIPv6") else "false",
        "Internal": "true" if n.get("Internal") else "false",
        "Labels": labels_text(n.get("Labels")),
        "Name": n["Name"],
        "Scope": n["Scope"],
    }, n.get("Labels"))


def network_ls(cli: Cli, filters: tuple[str, ...], fmt: str | None, no_trunc: bool, quiet: bool) -> None:
    """``network ls``."""
    precheck(fmt)
    nets = cli.client.request("GET", "/networks", query=encode(filters))
    if quiet:
        for n in nets:
            print(n["Id"] if no_trunc else short_id(n["Id"]))
        return
    listing("network", (network_row(n, no_trunc) for n in nets), fmt, "table {{.ID}}\\t{{.Name}}\\t{{.Driver}}\\t{{.Scope}}")


def volume_row(v: dict[str, Any]) -> Any:
    """One ``volume ls`` row as Docker's volume context."""
    return context("volume", {
        "Availability": "N/A",
        "Driver": v["Driver"],
        "Group": "N/A",
        "Labels": labels_text(v.get("Labels")),
        "Links": "N/A",
        "Mountpoint": v["Mountpoint"],
        "Name": v["Name"],
        "Scope": v["Scope"],
        "Size": "N/A",
        "Status": "N/A",
    }, v.get("Labels"))


def volume_ls(cli: Cli, filters: tuple[str, ...], fmt: str | None, quiet: bool) -> None:
    """``volume ls``."""
    precheck(fmt)
    vols = cli.client.request("GET", "/volumes", query=encode(filters))["Volumes"]
    if quiet:
        for v in vols:
            print(v["Name"])
        return
    listing("volume", (volume_row(v) for v in vols), fmt, "table {{.Driver}}\\t{{.Name}}")


def images(rows: list[tuple[dict[str, Any], str, str]], fmt: str | None, ident, human_size, stamp) -> None:
    """``images``: ``rows`` are (image, repository, tag) as ``image ls`` resolved them."""
    def row(img: dict[str, Any], repo: str, tag: str) -> Any:
        return context("image", {
            "Containers": "N/A" if img["Containers"] < 0 else str(img["Containers"]),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(img["Created"])) if img["Created"] else "",
            "CreatedSince": ago(stamp(img["Created"])) if img["Created"] else "N/A",
            "Digest": "<none>",
            "ID": ident(img["Id"]),
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": human_size(img["Size"]),
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(img["Size"]),
        }, img.get("Labels"))

    listing("image", (row(*r) for r in rows), fmt, "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}")
