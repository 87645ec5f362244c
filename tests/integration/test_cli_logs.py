"""``logs`` as Docker's (issue 16, item 2): stdout and stderr kept apart, ``--tail``/``-n``,
``-t`` (RFC 3339 with nanoseconds), ``--since``/``--until`` in each of Docker's forms,
``-f`` with them, a terminal's one stream, bytes that are not UTF-8, and output that
keeps reaching the log across an engine restart."""

from __future__ import annotations

import random
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest

from cli_engine import NETCORE, Engine
from image_archives import busybox_rootfs_tar, write

pytestmark = pytest.mark.root
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logs")
    (tmp / "eng").mkdir()
    eng = Engine(tmp / "eng").start()
    eng("image", "import", write(str(tmp / "bb.tar"), busybox_rootfs_tar()), "bb")
    yield eng
    eng.stop()


def name() -> str:
    return f"nct{random.randbytes(3).hex()}"


@pytest.fixture
def done(lab):
    """A container that printed out1, err1 (stderr), out2, err2 (stderr), out3 and exited."""
    c = name()
    script = "echo out1; echo err1 >&2; sleep 0.02; echo out2; echo err2 >&2; sleep 0.02; echo out3"
    lab("run", "-d", "--name", c, "--network", "none", "bb", "sh", "-c", script)
    lab("wait", c)
    yield c
    lab("rm", "-f", c)


def test_streams_apart(lab, done):
    res = lab("logs", done)
    assert (res.stdout, res.stderr) == ("out1\nout2\nout3\n", "err1\nerr2\n")
    res = subprocess.run(f"{' '.join(NETCORE)} logs {done} 2>/dev/null", shell=True, env=lab.env, capture_output=True, text=True)
    assert res.stdout == "out1\nout2\nout3\n"
    # the container holds its two FIFOs' write ends and nothing else of the log (no read end)
    fds = lab("run", "--rm", "--network", "none", "bb", "sh", "-c", "ls /proc/1/fd; readlink /proc/1/fd/1; readlink /proc/1/fd/2").stdout.split()
    assert fds[:3] == ["0", "1", "2"] and fds[3].endswith("/stdout.fifo") and fds[4].endswith("/stderr.fifo") and len(fds) == 5, fds
    # run without -d prints them apart too
    res = lab("run", "--rm", "--network", "none", "bb", "sh", "-c", "echo o; echo e >&2; exit 3", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "o\n", "e\n")


@pytest.mark.parametrize("args, out, err", [
    (("--tail", "2"), "out3\n", "err2\n"),
    (("-n", "1"), "out3\n", ""),
    (("-n", "0"), "", ""),
    (("--tail", "all"), "out1\nout2\nout3\n", "err1\nerr2\n"),
    (("--tail=3",), "out2\nout3\n", "err2\n"),
])
def test_tail(lab, done, args, out, err):
    res = lab("logs", *args, done)
    assert (res.stdout, res.stderr) == (out, err)


def test_tail_needs_a_number_and_the_container(lab, done):
    res = lab("logs", "--tail", done, check=False)  # the name is the value: no container left
    assert res.returncode == 125 and res.stderr.count("\n") == 1 and "tail" in res.stderr
    res = lab("logs", "--tail", "x", done, check=False)
    assert res.returncode == 125 and res.stderr.count("\n") == 1 and "invalid tail value" in res.stderr


def _stamped(text: str) -> list[tuple[str, str]]:
    return [STAMP.match(line).groups() for line in text.splitlines()]


def test_timestamps_and_time_filters(lab, done):
    res = lab("logs", "-t", done)
    out, err = _stamped(res.stdout), _stamped(res.stderr)
    assert [line for _, line in out] == ["out1", "out2", "out3"] and [line for _, line in err] == ["err1", "err2"]
    stamps = [s for s, _ in out]
    assert stamps == sorted(stamps) and stamps[0] < stamps[1]  # each line its own read
    second = stamps[1]
    at = datetime.strptime(second[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    unix = f"{int(at.timestamp())}.{second[20:29]}"
    for since in (second, unix):  # RFC 3339 with nanoseconds, Unix seconds
        assert lab("logs", "--since", since, done).stdout == "out2\nout3\n"
        assert lab("logs", "--until", since, done).stdout == "out1\n"
    assert lab("logs", "--since", second, "--until", stamps[2], done).stdout == "out2\n"
    assert lab("logs", "--since", "1h", done).stdout == "out1\nout2\nout3\n"  # relative
    assert lab("logs", "--since", "1h30m", "--until", "1h", done).stdout == ""
    assert lab("logs", "--since", second[:10], done).stdout == "out1\nout2\nout3\n"  # a day: its midnight, local
    assert lab("logs", "--since", second, "-n", "1", done).stdout == "out3\n"
    res = lab("logs", "--since", "yesterday", done, check=False)
    assert res.returncode == 125 and res.stderr.count("\n") == 1 and "failed to parse value as time or duration" in res.stderr


def test_follow_with_tail_and_timestamps(lab):
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "bb", "sh", "-c",
        "echo a; echo b; echo c; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo d; echo e >&2")
    try:
        deadline = time.monotonic() + 10
        while "c" not in lab("logs", c).stdout.split():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        follower = subprocess.Popen([*NETCORE, "logs", "-f", "-t", "--tail", "1", c], env=lab.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lab("exec", c, "touch", "/tmp/go")
        out, err = follower.communicate(timeout=30)  # ends when the container exits
        assert follower.returncode == 0
        assert [line for _, line in _stamped(out)] == ["c", "d"] and [line for _, line in _stamped(err)] == ["e"]
    finally:
        lab("rm", "-f", c)


def test_terminal_is_one_stream(lab):
    c = name()
    lab("run", "-d", "-t", "--name", c, "--network", "none", "bb", "sh", "-c", "echo out; echo err >&2")
    try:
        lab("wait", c)
        res = subprocess.run([*NETCORE, "logs", c], env=lab.env, capture_output=True)
        assert (res.stdout, res.stderr) == (b"out\r\nerr\r\n", b"")
        assert [line for _, line in _stamped(lab("logs", "-t", c).stdout.replace("\r", ""))] == ["out", "err"]
    finally:
        lab("rm", "-f", c)


def test_bytes_that_are_not_utf8(lab):
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "bb", "sh", "-c", r"printf '\377\376\000x\n'; printf 'no newline'")
    try:
        lab("wait", c)
        res = subprocess.run([*NETCORE, "logs", c], env=lab.env, capture_output=True)
        assert res.stdout == b"\xff\xfe\x00x\nno newline"
    finally:
        lab("rm", "-f", c)


def test_output_survives_an_engine_restart(tmp_path):
    (tmp_path / "eng").mkdir()
    eng = Engine(tmp_path / "eng").start()
    try:
        eng("image", "import", write(str(tmp_path / "bb.tar"), busybox_rootfs_tar()), "bb")
        c = name()
        eng("run", "-d", "--name", c, "--network", "none", "bb", "sh", "-c",
            "echo before; echo before-err >&2; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after; echo after-err >&2; sleep 60")
        deadline = time.monotonic() + 10
        while "before" not in eng("logs", c).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pid = str(eng.json("inspect", c)[0]["State"]["Pid"])
        eng.kill9()
        # no engine: the container writes on (into its FIFOs, which the monitor holds open)
        subprocess.run(["nsenter", "-t", pid, "-m", "-r", "touch", "/tmp/go"], check=True)
        eng.start()
        deadline = time.monotonic() + 10
        while "after" not in eng("logs", c).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        res = eng("logs", c)
        assert (res.stdout, res.stderr) == ("before\nafter\n", "before-err\nafter-err\n")
        eng("rm", "-f", c)
    finally:
        eng.stop()
