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
import re
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


_EPOCH = "1970-01-01T00:00:00.000000000Z"
# a line of printable ASCII without quote or backslash: JSON as it is (the fast path both ways)
_PLAIN = re.compile(rb'[ !#-\[\]-~]*\n?\Z')
_FAST = re.compile(rb'\{"log":"([ !#-\[\]-~]*?)(\\n)?","stream":"(stdout|stderr)","time":"([0-9TZ:.-]+)"\}\Z')


class Record(NamedTuple):
    stream: int  # STDOUT or STDERR
    stamp: str  # RFC 3339 with nanoseconds, as written (parsed only for --since/--until)
    data: bytes

    @property
    def time(self) -> int:
        """Nanoseconds since the epoch."""
        return parse_time(self.stamp)


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
    tail = b'","stream":"' + name.encode() + b'","time":"' + stamp.encode() + b'"}\n'
    out = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        line = data[start:end]
        if _PLAIN.match(line):
            out.append(b'{"log":"' + (line[:-1] + b"\\n" if line.endswith(b"\n") else line) + tail)
        else:
            text = line.decode("utf-8", "surrogateescape")
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
    """One line of the log, without its newline."""
    m = _FAST.match(line)
    if m:
        body, nl, stream, stamp = m.groups()
        return Record(STDOUT if stream == b"stdout" else STDERR, stamp.decode(), body + b"\n" if nl else body)
    try:
        obj = json.loads(line)
        parse_time(obj["time"])
        return Record(_NUMBERS[obj["stream"]], obj["time"], obj["log"].encode("utf-8", "surrogateescape"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return Record(STDOUT, _EPOCH, line + b"\n")  # not a record: a raw log line


def records(f, partial: bytearray | None = None) -> Iterator[Record]:
    """The complete records from ``f``'s position to its end; an incomplete last line (being
    written) stays in ``partial`` for the next call."""
    buf = partial if partial is not None else bytearray()
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return
        buf += chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            continue
        lines = bytes(buf[:cut]).split(b"\n")
        del buf[:cut + 1]
        for line in lines:
            yield _decode(line)


def select(recs: Iterable[Record], since: int | None = None, until: int | None = None, tail: int | None = None,
           streams: tuple[int, ...] = (STDOUT, STDERR)) -> list[Record]:
    """Docker's filters: ``since`` (inclusive) and ``until`` (exclusive) in nanoseconds, the
    last ``tail`` records, the streams asked for."""
    kept: Iterable[Record] = (r for r in recs if r.stream in streams and (since is None or r.time >= since)
                              and (until is None or r.time < until))  # time: parsed only when asked
    if tail is not None:
        return list(deque(kept, maxlen=tail)) if tail > 0 else []
    return list(kept)


def _last(f, tail: int, since: int | None, until: int | None, streams: tuple[int, ...]) -> list[Record]:
    """``--tail``: read back from the end only as far as the last ``tail`` records need (the
    file is left at its end, for ``follow``)."""
    end = f.seek(0, 2)
    size = 65536
    while True:
        start = max(0, end - size)
        f.seek(start)
        data = f.read(end - start)
        if start > 0:
            data = data[data.find(b"\n") + 1:]  # a cut first line is not a record
        recs = [_decode(line) for line in data.split(b"\n")[:-1]] if data else []
        kept = select(recs, since, until, tail, streams)
        if len(kept) >= tail or start == 0 or (since is not None and recs and recs[0].time < since):
            f.seek(end - (len(data) - data.rfind(b"\n") - 1))  # a last line still being written: for ``follow``
            return kept
        size *= 4


def follow(path: str, done: Callable[[], bool], wait: Callable[[float], object] = time.sleep, since: int | None = None,
           until: int | None = None, tail: int | None = None, streams: tuple[int, ...] = (STDOUT, STDERR),
           follow: bool = True) -> Iterator[list[Record]]:
    """The log's records through the filters, then (``follow``) the new ones as they come
    until ``done()`` and nothing is left, or a record is past ``until``; in batches (what
    one read found), so that a client gets them in few writes."""
    with open(path, "rb") as f:
        partial = bytearray()
        first = _last(f, tail, since, until, streams) if tail is not None else select(records(f, partial), since, until, None, streams)
        if first:
            yield first
        if not follow:
            return
        while True:
            finished = done()  # before the read: what was written before the end is read
            batch = []
            for r in records(f, partial):
                if until is not None and r.time >= until:
                    if batch:
                        yield batch
                    return
                if r.stream in streams and (since is None or r.time >= since):
                    batch.append(r)
            if batch:
                yield batch
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


def render(recs: Iterable[Record], timestamps: bool = False, multiplexed: bool = False) -> bytes:
    """Records as the API sends them: Docker's multiplexed frames (8-byte header: stream,
    0, 0, 0, big-endian length) for a container without a terminal when the client asked
    for streams, else the bytes; ``timestamps`` puts each line's time before it."""
    import struct

    out = []
    for r in recs:
        data = (r.stamp.encode() + b" " + r.data) if timestamps else r.data
        if multiplexed:
            out.append(struct.pack(">BxxxL", r.stream, len(data)))
        out.append(data)
    return b"".join(out)


def parse_query_time(value: str | None) -> int | None:
    """The API's ``since`` / ``until``: Unix seconds, with a fraction (Docker's
    ``1700000000.000000001``); 0 or empty: none."""
    if value in (None, "", "0"):
        return None
    sec, _, frac = str(value).partition(".")
    if not sec.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"invalid time {value!r}: expected Unix seconds")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
