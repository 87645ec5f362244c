"""Docker's ``filters``: parsing the API's JSON and matching the common keys.

The CLI (``runtime.cli.filterflag``) sends ``--filter key=value`` (repeatable) as Docker's ``filters`` query parameter,
``{"key": ["value", ...]}`` (the older ``{"key": {"value": true}}`` is read too); the engine
filters, as Docker's does, so that every client gets the same answer. Values of one key are
alternatives (any may match); different keys must all match. A key the listing does not
know is refused with Docker's text, ``invalid filter 'KEY'``.

One place for the matching shared by ``ps``, ``network ls``, ``network prune`` and
``container prune``: names and ids (``name``, ``id``), labels (``label=k``, ``label=k=v``,
``label!=...`` for prunes), times (``until``, ``before``/``since``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from netcore import InvalidConfig

__all__ = ["Filters", "parse", "until_cutoff", "stamp_seconds"]


class Filters(dict):
    """key -> list of values, as parsed from the request."""

    def values(self, key: str) -> list[str]:  # type: ignore[override]
        return self.get(key, [])

    def any(self, key: str, pred) -> bool:
        """No value for ``key``, or one of its values satisfies ``pred``."""
        vals = self.get(key)
        return not vals or any(pred(v) for v in vals)

    def name(self, name: str) -> bool:
        """``name=`` is a regular expression searched in the name, as Docker's (``/`` prefix ignored)."""
        return self.any("name", lambda v: _search(v, name) or _search(v, "/" + name))

    def ident(self, ident: str) -> bool:
        """``id=`` matches from the start of the full id."""
        return self.any("id", lambda v: ident.startswith(v))

    def labels(self, labels: Mapping[str, str] | None, key: str = "label") -> bool:
        """``label=k`` (present) or ``label=k=v``; every value must hold. ``label!=`` (prunes):
        none may hold."""
        labels = labels or {}
        if not all(_label(v, labels) for v in self.get(key, [])):
            return False
        return not any(_label(v, labels) for v in self.get(key.replace("label", "label!"), []))


def _label(spec: str, labels: Mapping[str, str]) -> bool:
    key, eq, value = spec.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def parse(raw: str | None, allowed: Iterable[str]) -> Filters:
    """The ``filters`` query parameter -> ``Filters``; a key outside ``allowed`` is a 400."""
    if not raw:
        return Filters()
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidConfig("invalid filter: the filters parameter is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidConfig("invalid filter: the filters parameter must be a JSON object")
    allowed = set(allowed)
    out = Filters()
    for key, vals in data.items():
        if key not in allowed:
            raise InvalidConfig(f"invalid filter '{key}'")
        if isinstance(vals, dict):  # the old shape: {"value": true}
            vals = [v for v, on in vals.items() if on]
        if isinstance(vals, str):
            vals = [vals]
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise InvalidConfig(f"invalid filter '{key}': values must be strings")
        if vals:
            out[key] = vals
    return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATIONS = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def until_cutoff(value: str, now: float | None = None) -> float:
    """``until=`` -> seconds since the epoch: a Go duration (``10m``, ``1h30m``, taken back
    from now), Unix seconds, or an RFC 3339 date/time."""
    now = time.time() if now is None else now
    text = value.strip()
    if _DURATIONS.fullmatch(text):
        return now - sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            stamp = datetime.strptime(text.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()
    raise InvalidConfig(f'failed to parse value as time or duration: "{value}"')


def stamp_seconds(stamp: str | None) -> float:
    """The engine's creation stamps (``%Y-%m-%dT%H:%M:%S%z``) as seconds; 0 when unknown."""
    if not stamp:
        return 0.0
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0
