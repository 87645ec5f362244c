"""The client-side parsers of the run flags and of ``logs`` (runtime.runopts, runtime.logopts),
and the log's record format (runtime.engine.logstore): table-driven."""

from __future__ import annotations

import io
import json
import struct
from datetime import datetime

import pytest

from runtime import logopts, runopts
from runtime.engine import files, logstore

NOW = 1_764_600_000 * 10**9  # 2025-12-01T14:40:00Z


@pytest.mark.parametrize("value, expected", [
    ("10m", NOW - 600 * 10**9),
    ("1h30m", NOW - 5400 * 10**9),
    ("1.5h", NOW - 5400 * 10**9),
    ("500ms", NOW - 500_000_000),
    ("1764600000", 1_764_600_000 * 10**9),
    ("1764600000.5", 1_764_600_000 * 10**9 + 500_000_000),
    ("2025-12-01T14:40:00Z", NOW),
    ("2025-12-01T14:40:00.123456789Z", NOW + 123_456_789),
    ("2025-12-01T16:40:00+02:00", NOW),
    ("2025-12-01T14:40Z", NOW),
])
def test_log_times(value, expected):
    sec, frac = logopts.api_time(value, now_ns=NOW).split(".")
    assert int(sec) * 10**9 + int(frac) == expected


def test_log_time_without_zone_is_local():
    local = datetime(2025, 12, 1, 0, 0, 0).astimezone()
    assert logopts.api_time("2025-12-01", now_ns=NOW) == f"{int(local.timestamp())}.000000000"


@pytest.mark.parametrize("value", ["yesterday", "10x", "2025-13-45", "", "1h-5m"])
def test_bad_log_times(value):
    with pytest.raises(ValueError, match="failed to parse value as time or duration"):
        logopts.api_time(value, now_ns=NOW)


@pytest.mark.parametrize("value, expected", [("all", "all"), ("0", "0"), ("007", "7"), ("-1", "all")])
def test_tail(value, expected):
    assert logopts.tail(value) == expected


def test_demux_keeps_the_order_of_interleaved_frames():
    frames = b"".join(struct.pack(">BxxxL", s, len(d)) + d for s, d in ((1, b"a"), (1, b"b"), (2, b"E"), (1, b"c")))
    seen = []

    class Sink(io.BytesIO):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def write(self, data):
            seen.append((self.tag, bytes(data)))
            return super().write(data)

    logopts.demux([frames], Sink("out"), Sink("err"))
    assert seen == [("out", b"ab"), ("err", b"E"), ("out", b"c")]


def test_demux_splits_frames_across_chunks():
    frames = struct.pack(">BxxxL", 1, 3) + b"out" + struct.pack(">BxxxL", 2, 4) + b"err\n"
    out, err = io.BytesIO(), io.BytesIO()
    logopts.demux([frames[:5], frames[5:13], frames[13:]], out, err)
    assert (out.getvalue(), err.getvalue()) == (b"out", b"err\n")


@pytest.mark.parametrize("value, environ, expected", [
    ("A=1", {}, ("A", "1")),
    ("A=", {}, ("A", "")),
    ("A=b=c", {}, ("A", "b=c")),
    ("A", {"A": "from client"}, ("A", "from client")),
    ("A", {}, None),
])
def test_env_arg(value, environ, expected):
    assert runopts.env_arg(value, environ) == expected


def test_env_file_and_label_file(tmp_path):
    f = tmp_path / "e"
    f.write_text("# c\n\n  A=1\nB=with spaces \nC\nD\n")
    assert runopts.env_file(str(f), {"C": "c"}) == [("A", "1"), ("B", "with spaces "), ("C", "c")]
    f.write_text("bad key=1\n")
    with pytest.raises(ValueError, match="whitespaces"):
        runopts.env_file(str(f), {})
    with pytest.raises(ValueError, match="no such file or directory"):
        runopts.env_file(str(tmp_path / "none"))
    f.write_text("a=1\nb\n")
    assert runopts.label_file(str(f)) == [("a", "1"), ("b", "")]


@pytest.mark.parametrize("parse, value, expected", [
    (runopts.add_host, "db:10.0.0.1", "db:10.0.0.1"),
    (runopts.add_host, "db=10.0.0.1", "db:10.0.0.1"),
    (runopts.add_host, "gw:host-gateway", "gw:host-gateway"),
    (runopts.add_host, "v6:[::1]", "v6:::1"),
    (runopts.memory, "64m", 64 << 20),
    (runopts.memory, "1g", 1 << 30),
    (runopts.memory, "7340032", 7 << 20),
    (runopts.cpus, "1.5", 1_500_000_000),
    (runopts.mac_address, "92:D0:C6:0A:29:33", "92:d0:c6:0a:29:33"),
])
def test_run_flag_values(parse, value, expected):
    assert parse(value) == expected


@pytest.mark.parametrize("parse, value, needle", [
    (runopts.add_host, "nocolon", "bad format"),
    (runopts.add_host, "db:notanip", "invalid IP address"),
    (runopts.memory, "1k", "Minimum memory limit"),
    (runopts.memory, "lots", "invalid size"),
    (runopts.cpus, "0", "must be positive"),
    (runopts.cpus, "x", "rational number"),
    (runopts.mac_address, "01:00:5e:00:00:01", "multicast"),
    (runopts.mac_address, "92:d0:c6:0a:29", "not a valid mac address"),
])
def test_run_flag_refusals(parse, value, needle):
    with pytest.raises(ValueError, match=needle):
        parse(value)


def test_cidfile(tmp_path):
    path = str(tmp_path / "cid")
    runopts.claim_cidfile(path)
    runopts.write_cidfile(path, "abc")
    assert open(path).read() == "abc"
    with pytest.raises(ValueError, match="Container ID file found"):
        runopts.claim_cidfile(path)


def test_log_records_round_trip_lines_streams_times_and_bytes(tmp_path):
    path = str(tmp_path / "log")
    w = logstore.Writer(path)
    w.write(logstore.STDOUT, b"a\nb\n", ns=NOW)
    w.write(logstore.STDERR, b"\xff\xfe raw\n", ns=NOW + 1)
    w.write(logstore.STDOUT, b"prompt> ", ns=NOW + 2)
    w.close()
    with open(path, "rb") as f:
        recs = list(logstore.records(f))
    assert [(r.stream, r.time, r.data) for r in recs] == [
        (1, NOW, b"a\n"), (1, NOW, b"b\n"), (2, NOW + 1, b"\xff\xfe raw\n"), (1, NOW + 2, b"prompt> ")]
    # the fast path writes what JSON would: every line reads back the same through json too
    for line in open(path, "rb"):
        obj = json.loads(line)
        assert set(obj) == {"log", "stream", "time"}
    assert logstore._decode(b'{"time":"2025-12-01T14:40:00.000000000Z","stream":"stderr","log":"q\\"\\n"}') == (
        2, "2025-12-01T14:40:00.000000000Z", b'q"\n')  # another writer's key order: the slow path
    assert logstore._decode(b"raw line") == (1, "1970-01-01T00:00:00.000000000Z", b"raw line\n")
    assert b'"time":"2025-12-01T14:40:00.000000001Z"' in open(path, "rb").read()
    assert logstore.select(recs, tail=2) == recs[2:]
    assert logstore.select(recs, since=NOW + 1) == recs[2:]
    assert logstore.select(recs, until=NOW + 1) == recs[:2]
    assert logstore.select(recs, streams=(2,)) == [recs[2]]
    assert logstore.select(recs, tail=0) == []
    assert logstore.render(recs[:1], timestamps=True) == b"2025-12-01T14:40:00.000000000Z a\n"
    assert logstore.render(recs[2:3], multiplexed=True) == struct.pack(">BxxxL", 2, 7) + b"\xff\xfe raw\n"


def test_resolv_conf_search_and_options(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\nsearch host.test\noptions edns0\n")
    text = files.resolv_conf(embedded=True, host_file=str(host), search=["a.test"], options=["timeout:2"])
    assert text.splitlines() == ["nameserver 127.0.0.11", "search a.test", "options ndots:0 timeout:2"]
    text = files.resolv_conf(host_file=str(host), options=["ndots:5"])
    assert text.splitlines() == ["nameserver 192.0.2.1", "search host.test", "options ndots:5"]
    assert files.hosts("h", "n", ["10.0.0.2"], [("192.0.2.9", "db")]).splitlines()[-2:] == ["192.0.2.9\tdb", "10.0.0.2\th n"]


def test_tail_reads_back_from_the_end_and_follows_a_line_being_written(tmp_path):
    path = str(tmp_path / "log")
    w = logstore.Writer(path)
    for i in range(5000):
        w.write(logstore.STDOUT if i % 3 else logstore.STDERR, b"line %d\n" % i, ns=NOW + i)
    with open(path, "ab") as f:
        f.write(logstore.encode(logstore.STDOUT, b"late\n", NOW + 9999)[:10])  # half a record
    got = logstore.follow(path, lambda: True, tail=2, streams=(logstore.STDERR,))
    assert [r.data for r in next(got)] == [b"line 4995\n", b"line 4998\n"]
    with open(path, "ab") as f:
        f.write(logstore.encode(logstore.STDOUT, b"late\n", NOW + 9999)[10:])
    with open(path, "rb") as f:
        assert [r.data for r in logstore.select(logstore.records(f), tail=1)] == [b"late\n"]
    assert [r.data for batch in logstore.follow(path, lambda: True, tail=1) for r in batch] == [b"late\n"]
    assert [r.data for batch in logstore.follow(path, lambda: True, tail=2, since=NOW + 4999) for r in batch] == [b"line 4999\n", b"late\n"]
    w.close()
