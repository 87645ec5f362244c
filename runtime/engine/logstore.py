"""A container's log: one JSON object per line of output, Docker's json-file format.

``{"log": "hello\\n", "stream": "stdout", "time": "2026-12-01T15:47:50.123456789Z"}``:
each line keeps its stream and the time the engine read it, so ``logs`` can show
stdout and stderr apart, ``--timestamps``, ``--since``/``--until`` and ``--tail``.
Output that is not UTF-8 survives: bytes that do not decode are kept as lone
surrogates (``surrogateescape``), which JSON escapes and ``read`` turns back into
the same bytes. A line that is not a record (a log written before this format)
reads as stdout of time 0.

Who writes: ``LogPump`` for a container without a terminal (its stdout and stderr
are FIFOs in its state dir that the engine reads), ``stdio.Stdio`` for one with a
terminal (all of it stdout, as in Docker). Readers: ``logs``, attached clients,
a build's RUN.
"""

from __future__ import annotations

import calendar
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

__all__ = ["Record", "STDOUT", "STDERR", "encode", "Writer", "records", "select", "follow", "rfc3339", "parse_time", "text_of", "render",
           "parse_query_time"]

STDOUT, STDERR = 1, 2  # Docker's stream numbers in a multiplexed stream
_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
_NUMBERS = {"stdout": STDOUT, "stderr": STDERR}
_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


class Record(NamedTuple):
    stream: int  # STDOUT or STDERR
    time: int  # nanoseconds since the epoch
    data: bytes


def rfc3339(ns: int) -> str:
    """Docker's timestamp: RFC 3339 with nanoseconds, UTC."""
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


_seconds_cache: dict[str, int] = {}


def parse_time(text: str) -> int:
    """``rfc3339``'s output back to nanoseconds (the writer's exact shape only)."""
    head, _, frac = text.rstrip("Z").partition(".")
    sec = _seconds_cache.get(head)
    if sec is None:
        sec = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        if len(_seconds_cache) > 4096:
            _seconds_cache.clear()
        _seconds_cache[head] = sec
    return sec * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def encode(stream: int, data: bytes, ns: int) -> bytes:
    """One record per line of ``data`` (its last piece too, when it has no newline yet:
    a prompt must reach an attached client before its line ends)."""
    stamp, name = rfc3339(ns), _NAMES[stream]
    out = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        text = data[start:end].decode("utf-8", "surrogateescape")
        out.append(_dumps({"log": text, "stream": name, "time": stamp}).encode() + b"\n")
        start = end
    return b"".join(out)


class Writer:
    """Appends records to a log file (one ``write`` per chunk: readers never see half a record
    of a chunk that fits the pipe's atomic size)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)

    def write(self, stream: int, data: bytes, ns: int | None = None) -> None:
        if data:
            buf = memoryview(encode(stream, data, time.time_ns() if ns is None else ns))
            while buf:
                buf = buf[os.write(self.fd, buf):]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _decode(line: bytes) -> Record:
    try:
        obj = json.loads(line)
        return Record(_NUMBERS[obj["stream"]], parse_time(obj["time"]), obj["log"].encode("utf-8", "surrogateescape"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Record(STDOUT, 0, line)  # not a record: a raw log line


def records(f, partial: bytearray | None = None) -> Iterator[Record]:
    """The complete records from ``f``'s position to its end; an incomplete last line (being
    written) stays in ``partial`` for the next call."""
    buf = partial if partial is not None else bytearray()
    while True:
        chunk = f.read(65536)
        if not chunk:
            return
        buf += chunk
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            yield _decode(bytes(buf[start:end + 1]))
            start = end + 1
        del buf[:start]


def select(recs: Iterable[Record], since: int | None = None, until: int | None = None, tail: int | None = None,
           streams: tuple[int, ...] = (STDOUT, STDERR)) -> list[Record]:
    """Docker's filters: ``since`` (inclusive) and ``until`` (exclusive) in nanoseconds, the
    last ``tail`` records, the streams asked for."""
    kept: Iterable[Record] = (r for r in recs if r.stream in streams and (since is None or r.time >= since)
                              and (until is None or r.time < until))
    if tail is not None:
        return list(deque(kept, maxlen=tail)) if tail > 0 else []
    return list(kept)


def follow(path: str, done: Callable[[], bool], wait: Callable[[float], object] = time.sleep, since: int | None = None,
           until: int | None = None, tail: int | None = None, streams: tuple[int, ...] = (STDOUT, STDERR),
           follow: bool = True) -> Iterator[Record]:
    """The log's records through the filters, then (``follow``) the new ones as they come
    until ``done()`` and nothing is left, or a record is past ``until``."""
    with open(path, "rb") as f:
        partial = bytearray()
        yield from select(records(f, partial), since, until, tail, streams)
        if not follow:
            return
        while True:
            finished = done()  # before the read: what was written before the end is read
            for r in records(f, partial):
                if until is not None and r.time >= until:
                    return
                if r.stream in streams and (since is None or r.time >= since):
                    yield r
            if finished:
                return
            if until is not None and time.time_ns() >= until:
                return
            wait(0.02)


def text_of(path: str, offset: int = 0) -> str:
    """The log's text from byte ``offset`` (both streams): a failed start's last words."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return b"".join(r.data for r in records(f)).decode(errors="replace")
    except OSError:
        return ""


def render(recs: Iterable[Record], timestamps: bool = False, multiplexed: bool = False) -> Iterator[bytes]:
    """Records as the API sends them: Docker's multiplexed frames (8-byte header: stream,
    0, 0, 0, big-endian length) for a container without a terminal when the client asked
    for streams, else the bytes; ``timestamps`` puts each line's time before it."""
    import struct

    for r in recs:
        data = (rfc3339(r.time).encode() + b" " + r.data) if timestamps else r.data
        yield struct.pack(">BxxxL", r.stream, len(data)) + data if multiplexed else data


def parse_query_time(value: str | None) -> int | None:
    """The API's ``since`` / ``until``: Unix seconds, with a fraction (Docker's
    ``1700000000.000000001``); 0 or empty: none."""
    if value in (None, "", "0"):
        return None
    sec, _, frac = str(value).partition(".")
    if not sec.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"invalid time {value!r}: expected Unix seconds")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
