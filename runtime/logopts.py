"""The client's side of ``logs``: Docker's time forms for ``--since``/``--until``, ``--tail``,
and the multiplexed stream split back into stdout and stderr.

Time forms, as Docker's CLI takes them: a duration back from now (``10m``, ``1h30m``,
``1.5h``, ``500ms``), RFC 3339 (``2026-12-01T15:04:05Z``, ``...05.123456789+02:00``,
without a zone: local time; ``2026-12-01`` alone), or Unix seconds (``1700000000``,
``1700000000.5``). The API gets Unix seconds with nanoseconds. Nothing here imports
the engine.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import BinaryIO

__all__ = ["api_time", "tail", "demux"]

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?(?:ns|us|µs|ms|s|m|h))+$")
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$")


def _ns(value: str, now_ns: int) -> int:
    if _DURATION.match(value):
        return now_ns - int(sum(float(n) * _UNIT_NS[u] for n, u in _PART.findall(value)))
    if re.fullmatch(r"-?[0-9]+(\.[0-9]{1,9})?", value):
        sec, _, frac = value.partition(".")
        return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    m = _RFC3339.match(value)
    if m:
        day, clock, frac, zone = m.groups()
        clock = clock or "00:00:00"
        if clock.count(":") == 1:
            clock += ":00"
        try:
            stamp = datetime.fromisoformat(f"{day}T{clock}{'+00:00' if zone == 'Z' else zone or ''}")
        except ValueError:
            raise ValueError(f'failed to parse value as time or duration: "{value}"') from None
        if stamp.tzinfo is None:
            stamp = stamp.astimezone()  # local time, as Docker's
        secs = int(stamp.astimezone(timezone.utc).timestamp())
        return secs * 1_000_000_000 + int(((frac or "") + "000000000")[:9])
    raise ValueError(f'failed to parse value as time or duration: "{value}"')


def api_time(value: str, now_ns: int | None = None) -> str:
    """``--since``/``--until`` as the API's Unix seconds, nanoseconds after the point."""
    ns = _ns(value.strip(), time.time_ns() if now_ns is None else now_ns)
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{sec}.{frac:09d}"


def tail(value: str) -> str:
    """``--tail``/``-n``: ``all`` or a count (Docker takes a negative count for all)."""
    if value == "all" or (value.startswith("-") and value[1:].isdigit()):
        return "all"
    if not value.isdigit():
        raise ValueError(f"invalid tail value {value!r}: expected a number or \"all\"")
    return str(int(value))


def demux(chunks: Iterable[bytes], out: BinaryIO, err: BinaryIO) -> None:
    """Docker's multiplexed stream (8-byte headers: stream, 0, 0, 0, length) to ``out``
    (stream 1) and ``err`` (stream 2), flushed as it comes."""
    pending = b""
    for chunk in chunks:
        pending = pending + chunk if pending else chunk
        at, end = 0, len(pending)
        while end - at >= 8:
            stream, size = struct.unpack_from(">BxxxL", pending, at)
            if end - at < 8 + size:
                break
            target = err if stream == 2 else out
            if stream != 2:  # a run of stdout frames: one write
                stop = at
                parts = []
                while end - stop >= 8:
                    s2, n2 = struct.unpack_from(">BxxxL", pending, stop)
                    if s2 == 2 or end - stop < 8 + n2:
                        break
                    parts.append(pending[stop + 8:stop + 8 + n2])
                    stop += 8 + n2
                target.write(b"".join(parts))
                at = stop
            else:
                target.write(pending[at + 8:at + 8 + size])
                at += 8 + size
            target.flush()  # as it comes: the two streams keep their order on one terminal
        pending = pending[at:]
