"""Docker-style output: padded tables, human durations, JSON lines."""

from __future__ import annotations

import json
import sys
import time

TYPE_CHECKING = False  # as in runtime.api.client: importing typing is paid by every command's start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

__all__ = ["table", "json_lines", "ago", "short_id", "status", "inspect_all", "inspect_objects", "confirm", "each"]


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
    if row["State"] in ("running", "paused"):
        return f"Up {_human(_seconds_since(row['StartedAt']) or 0)}" + (" (Paused)" if row["State"] == "paused" else "")
    if row["State"] in ("exited", "restarting"):
        return f"{row['Status']} {ago(row['FinishedAt'])}".rstrip()
    return row["Status"]


def _printer(fmt: str | None):
    """How ``inspect`` prints what it found: the JSON array, or each object through ``-f``'s template."""
    if fmt:
        from runtime.cli.formatting import inspecting

        return inspecting(fmt)
    return lambda out: print(json.dumps(out, indent=4))


def inspect_all(client: Any, kind: str, refs: Iterable[str], fmt: str | None = None) -> None:
    """``KIND inspect`` of several objects: print the JSON array of those found (or each through the
    ``-f`` template), then fail with Docker's ``No such KIND: REF`` line for each one missing."""
    inspect_objects(client, refs, kind, fmt)


_INSPECT_PATHS = {"container": "/containers/{}/json", "image": "/images/{}/json", "network": "/networks/{}", "volume": "/volumes/{}"}


def inspect_objects(client: Any, refs: Iterable[str], type_: str | None = None, fmt: str | None = None) -> None:
    """Top-level ``inspect``: each name as a container, else an image, a network, a volume (Docker's
    order), or only as ``type_``; the output as ``inspect_all``'s."""
    from runtime.api.client import ApiError, q

    show = _printer(fmt)
    out, errors = [], []
    for ref in refs:
        for kind in (type_,) if type_ else ("container", "image", "network", "volume"):
            try:
                out.append(client.request("GET", _INSPECT_PATHS[kind].format(q(ref))))
                break
            except ApiError as exc:
                if exc.status not in (400, 404):  # 400: not a valid name of this kind (an image reference)
                    errors.append(exc)
                    break
        else:  # Docker's client words for a 404, per kind ("object" when no --type)
            errors.append(ApiError(0, f"No such {type_ or 'object'}: {ref}"))
    show(out)
    for exc in errors[:-1]:  # Docker reports every one missing, each once, then exits 1
        print(("Error response from daemon: " if exc.status else "Error: ") + str(exc), file=sys.stderr, flush=True)
    if errors:
        raise errors[-1]


def each(items: Sequence[str], action: Callable[[str], Any], report: Callable[[str, Any], None] | None = None) -> None:
    """Docker's way with several objects (``rm a b``, ``stop a b`` ...): every one that can be done is done and
    reported (its name, by default), each failure is one line on stderr, once, and the exit is 1 at the end.
    A single object's failure is the CLI's ordinary one-line error. A name given twice is tried once."""
    from runtime.api.client import ApiError

    report = report or (lambda item, _result: print(item, flush=True))
    if len(items) == 1:
        report(items[0], action(items[0]))
        return
    failed = False
    for item in dict.fromkeys(items):
        try:
            report(item, action(item))
        except ApiError as exc:
            print(("Error response from daemon: " if exc.status else "Error: ") + str(exc), file=sys.stderr, flush=True)
            failed = True
    if failed:
        sys.exit(1)


def confirm(question: str) -> bool:
    """Docker's ``[y/N]`` prompt; no answer (end of input) is no."""
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        print()
    return answer.strip().lower() in ("y", "yes")
