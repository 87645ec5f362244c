"""``-f/--filter key=value`` of the listing and prune commands (the flag and its encoding), and ``--format``'s help.

The engine does the filtering (``runtime.filters``); the CLI only checks the shape of each
flag and sends Docker's ``filters`` JSON, ``{"key": ["value", ...]}``.
"""

from __future__ import annotations

import json

from runtime.cli.base import option, parsed

__all__ = ["filter_option", "encode", "FORMAT_HELP"]

FORMAT_HELP = ("Format output using a custom template: 'table' (default), 'table TEMPLATE' (a table with headers), "
               "'json' (one JSON object a line), or a Go template, e.g. '{{.ID}}\\t{{.Names}}'.")


def _pair(spec: str) -> str:
    key, eq, _ = spec.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"bad format of filter (expected name=value): {spec!r}" if spec else "bad format of filter (expected name=value)")
    return spec


def filter_option(short: bool = True):
    """The flag; ``short``: also ``-f`` (not on prunes, whose ``-f`` is ``--force``)."""
    decls = ("-f", "--filter") if short else ("--filter",)
    what = "Filter output based on conditions provided" if short else 'Provide filter values (e.g. "until=24h", "label=K=V")'
    return option(*decls, "filters", multiple=True, type=parsed(_pair, "filter"), metavar="FILTER",
                  help=f"{what} (KEY=VALUE, repeatable).")


def encode(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The query parameters for the flags: ``{"filters": JSON}``, or nothing without flags."""
    data: dict[str, list[str]] = {}
    for spec in specs:
        key, _, value = spec.partition("=")
        data.setdefault(key.strip(), []).append(value)
    return {"filters": json.dumps(data)} if data else {}
