"""Docker-style output: padded tables, human durations, JSON lines."""

from __future__ import annotations

import json
import sys
import time

TYPE_CHECKING = False  # as in runtime.api.client: importing typing is paid by every command's start
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

__all__ = ["table", "json_lines", "ago", "short_id", "status", "inspect_all", "confirm"]


def short_id(value: str) -> str:
    return value[:12]


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in [list(headers)] + rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def json_lines(items: Iterable[Any]) -> None:
    for item in items:
        print(json.dumps(item))


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        from datetime import datetime  # only ``ps`` needs it: kept off the start-up path

        return max(0.0, time.time() - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp())
    except ValueError:
        return None


def _human(seconds: float) -> str:
    if seconds < 1:
        return "Less than a second"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''}" if n > 1 else f"About a{'n' if unit == 'hour' else ''} {unit}"
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


def ago(stamp: str | None) -> str:
    secs = _seconds_since(stamp)
    return "" if secs is None else f"{_human(secs)} ago"


def status(row: dict[str, Any]) -> str:
    """Docker's STATUS column: ``Up 2 minutes``, ``Exited (0) 5 seconds ago``."""
    if row["State"] == "running":
        return f"Up {_human(_seconds_since(row['StartedAt']) or 0)}"
    if row["State"] in ("exited", "restarting"):
        return f"{row['Status']} {ago(row['FinishedAt'])}".rstrip()
    return row["Status"]


def inspect_all(client: Any, paths: Iterable[str]) -> None:
    """``inspect`` of several objects: print the JSON array of those found, then fail on the last error."""
    out, failed = [], None
    for path in paths:
        try:
            out.append(client.request("GET", path))
        except Exception as exc:  # ApiError: keep going like Docker, report at the end
            failed = exc
    print(json.dumps(out, indent=4))
    if failed:
        raise failed


def confirm(question: str) -> bool:
    """Docker's ``[y/N]`` prompt; no answer (end of input) is no."""
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        print()
    return answer.strip().lower() in ("y", "yes")
