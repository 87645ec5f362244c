"""The pure parts of issue 16 item 6: cp's destination rules, the event bus (since/until,
filters), Docker's time and size notations, the plain template rendering."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest

from runtime import copyrules
from runtime.api.system import parse_time
from runtime.cli.ops import binary_size, decimal_size, render
from runtime.engine.events import EventBus, matches


def packed(tmp_path, rel: str) -> io.BytesIO:
    buf = io.BytesIO()
    copyrules.pack(str(tmp_path / "src" / rel) if rel != "dir/." else str(tmp_path / "src" / "dir") + "/.", buf)
    buf.seek(0)
    return buf


@pytest.fixture
def src(tmp_path):
    (tmp_path / "src" / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "f.txt").write_text("file\n")
    (tmp_path / "src" / "dir" / "sub" / "g").write_text("deep\n")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "existing").write_text("old\n")
    (tmp_path / "dst" / "into").mkdir()
    return tmp_path


CASES = [  # (source, destination, expected file -> content, or the error's words)
    ("f.txt", "dst/into", {"dst/into/f.txt": "file\n"}),
    ("f.txt", "dst/into/", {"dst/into/f.txt": "file\n"}),
    ("f.txt", "dst/new.txt", {"dst/new.txt": "file\n"}),
    ("f.txt", "dst/existing", {"dst/existing": "file\n"}),
    ("dir", "dst/into", {"dst/into/dir/sub/g": "deep\n"}),
    ("dir", "dst/newdir", {"dst/newdir/sub/g": "deep\n"}),
    ("dir/.", "dst/into", {"dst/into/sub/g": "deep\n"}),
    ("dir/.", "dst/fresh", {"dst/fresh/sub/g": "deep\n"}),
    ("dir", "dst/existing", 'cannot overwrite non-directory'),
    ("f.txt", "dst/missing/", 'must exist'),
    ("f.txt", "dst/no/such/file", "no such directory"),
]


@pytest.mark.parametrize("source,dest,want", CASES, ids=[f"{s}->{d}" for s, d, _ in CASES])
def test_cp_destination_rules(src, source, dest, want):
    archive = packed(src, source)
    target = str(src / dest) + ("/" if dest.endswith("/") else "")
    if isinstance(want, str):
        with pytest.raises(copyrules.CopyError, match=want):
            copyrules.unpack(archive, target)
        return
    copyrules.unpack(archive, target)
    for rel, content in want.items():
        assert (src / rel).read_text() == content


def test_cp_pack_of_a_missing_path_names_it(tmp_path):
    with pytest.raises(copyrules.CopyError, match=r"Could not find the file /.*/nope in container c"):
        copyrules.pack(str(tmp_path / "nope"), io.BytesIO(), where=" in container c")


def test_cp_archive_cannot_escape_its_destination(tmp_path):
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    buf.seek(0)
    (tmp_path / "d").mkdir()
    with pytest.raises(copyrules.CopyError):
        copyrules.unpack(buf, str(tmp_path / "d"), raw=True)
    assert not (tmp_path / "escaped").exists()


def test_event_bus_since_until_and_filters():
    bus = EventBus(keep=10)
    t0 = time.time()
    bus.publish("container", "create", "a" * 64, name="one", image="bb")
    bus.publish("network", "connect", "n" * 64, name="net", container="a" * 64, type="bridge")
    bus.publish("container", "start", "b" * 64, name="two", image="bb", tier="web")
    out = [json.loads(x) for x in bus.stream(since=t0 - 1, until=time.time())]
    assert [e["Action"] for e in out] == ["create", "connect", "start"]
    assert out[0]["status"] == "create" and out[0]["from"] == "bb" and out[0]["id"] == "a" * 64
    assert list(bus.stream(since=None, until=time.time() - 1)) == []  # no --since: nothing from before
    f = lambda **kw: [e["Action"] for e in (json.loads(x) for x in bus.stream(since=t0 - 1, until=time.time(), filters=kw))]
    assert f(type=["network"]) == ["connect"]
    assert f(container=["one"]) == ["create"]
    assert f(container=["aaaa"]) == ["create", "connect"]  # a network event names the container by id
    assert f(container=["bbbb"]) == ["start"]
    assert f(label=["tier=web"]) == ["start"] and f(label=["tier"]) == ["start"]
    assert f(event=["create", "start"], type=["container"]) == ["create", "start"]
    assert not matches(out[0], {"nonsense": ["x"]})


def test_event_bus_streams_new_events_to_a_follower():
    bus = EventBus()
    got: list[bytes] = []

    def follow():
        for chunk in bus.stream(until=time.time() + 5):
            if chunk.strip():
                got.append(chunk)
                return

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.1)
    bus.publish("container", "die", "c" * 64, name="x", exitCode=3)
    t.join(5)
    assert not t.is_alive() and json.loads(got[0])["Actor"]["Attributes"]["exitCode"] == "3"


@pytest.mark.parametrize("text,want", [
    ("1700000000", 1700000000.0), ("1700000000.5", 1700000000.5), ("10m", 1000.0 - 600), ("1h30m", 1000.0 - 5400),
    ("2023-11-14T22:13:20Z", 1700000000.0), ("2023-11-14T23:13:20+01:00", 1700000000.0), ("2023-11-14", 1699920000.0),
])
def test_docker_time_notations(text, want):
    assert parse_time(text, now=1000.0) == pytest.approx(want)


def test_a_bad_time_is_one_line():
    from netcore import InvalidConfig

    with pytest.raises(InvalidConfig, match="failed to parse value as time or duration"):
        parse_time("yesterday")


def test_sizes_and_templates():
    assert binary_size(1536) == "1.5KiB" and binary_size(0) == "0B" and binary_size(25_275_990_016) == "23.54GiB"
    assert decimal_size(1234) == "1.23kB" and decimal_size(999) == "999B"
    row = {"Name": "web", "Actor": {"Attributes": {"name": "x"}}, "Labels": {"a": "b"}}
    assert render("{{.Name}}\\t{{.Actor.Attributes.name}}", row) == "web\tx"
    assert render("{{json .Labels}}", row) == '{"a":"b"}'  # Go's encoding: no spaces
    import click

    with pytest.raises(click.ClickException, match='map has no entry for key "Nope"'):
        render("{{.Nope}}", row)
    assert os.sep == "/"
