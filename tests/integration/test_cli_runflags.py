"""Docker's run/create flags through the CLI (issue 16, item 4): what the container sees
(``env``, ``hostname``, /etc/hosts, /etc/resolv.conf, ``ip link``, its cgroup), what
``inspect`` shows, and the one-line refusals with their exit codes."""

from __future__ import annotations

import os
import random
import re
import time

import pytest

from cli_engine import Engine
from image_archives import busybox_rootfs_tar, docker_save_archive, write

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runflags")
    (tmp / "eng").mkdir()
    eng = Engine(tmp / "eng").start()
    eng("image", "import", write(str(tmp / "bb.tar"), busybox_rootfs_tar()), "bb")
    eng("load", "-i", write(str(tmp / "sig.tar"), docker_save_archive([busybox_rootfs_tar()], ["stopsig"],
                                                                          config={"Cmd": ["sh"], "StopSignal": "SIGUSR1"})))
    yield eng
    eng.stop()


def name() -> str:
    return f"nct{random.randbytes(3).hex()}"


def run(lab: Engine, *args: str, check: bool = True):
    return lab("run", "--rm", *args, check=check)


def test_env_from_the_client_env_file_and_home(lab, tmp_path, monkeypatch):
    monkeypatch.setitem(lab.env, "NCT_FROM_CLIENT", "client value")  # the client's environment
    assert "NCT_UNSET" not in lab.env
    envf = tmp_path / "vars.env"
    envf.write_text("# a comment\n\nA=1\nB=two words\nNCT_FROM_CLIENT\nC=\"quoted\"\nA=override\n")
    out = run(lab, "--network", "none", "-e", "NCT_FROM_CLIENT", "-e", "NCT_UNSET", "--env-file", str(envf), "-e", "B=cli",
              "bb", "env").stdout.splitlines()
    env = dict(line.split("=", 1) for line in out)
    assert env["NCT_FROM_CLIENT"] == "client value" and "NCT_UNSET" not in env
    assert (env["A"], env["B"], env["C"]) == ("override", "cli", '"quoted"')  # as written; -e over the file
    assert env["HOME"] == "/root"  # root's passwd entry in the image
    assert run(lab, "--network", "none", "-u", "65534", "bb", "sh", "-c", "echo $HOME").stdout == "/\n"  # no entry: /
    res = run(lab, "--env-file", str(tmp_path / "nope.env"), "bb", "true", check=False)
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "no such file or directory" in res.stderr


def test_hostname_defaults_to_the_short_id_and_h_sets_it(lab):
    c = name()
    try:
        cid = lab("run", "-d", "--name", c, "bb", "sleep", "60").stdout.strip()
        assert lab("exec", c, "hostname").stdout.strip() == cid[:12]
        hosts = lab("exec", c, "cat", "/etc/hosts").stdout
        assert re.search(rf"^\S+\t{cid[:12]} {c}$", hosts, re.M)
        assert lab.json("inspect", c)[0]["Config"]["Hostname"] == cid[:12]
    finally:
        lab("rm", "-f", c)
    assert run(lab, "-h", "web1", "bb", "hostname").stdout == "web1\n"


def test_labels_and_label_file(lab, tmp_path):
    lf = tmp_path / "labels"
    lf.write_text("# x\nteam=net\nempty\nover=file\n")
    c = name()
    lab("create", "--name", c, "-l", "a=1", "--label", "over=cli", "--label-file", str(lf), "bb", "true")
    try:
        assert lab.json("inspect", c)[0]["Config"]["Labels"] == {"a": "1", "over": "cli", "team": "net", "empty": ""}
    finally:
        lab("rm", c)


def test_add_host_and_dns_search_and_options(lab):
    bridge_gw = lab.json("network", "inspect", "bridge")[0]["IPAM"]["Config"][0]["Gateway"]
    out = run(lab, "--add-host", "db.local:192.0.2.7", "--add-host", "gw=host-gateway", "bb", "cat", "/etc/hosts").stdout
    assert "192.0.2.7\tdb.local\n" in out and f"{bridge_gw}\tgw\n" in out
    out = run(lab, "--dns-search", "example.test", "--dns-search", "b.test", "--dns-option", "ndots:3", "--dns-option", "timeout:2",
              "--dns", "192.0.2.53", "bb", "cat", "/etc/resolv.conf").stdout
    lines = out.splitlines()
    assert "nameserver 192.0.2.53" in lines and "search example.test b.test" in lines and "options ndots:3 timeout:2" in lines
    assert sum(line.startswith("search") for line in lines) == 1
    res = run(lab, "--add-host", "nocolon", "bb", "true", check=False)
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "add-host" in res.stderr


def test_mac_address(lab):
    out = run(lab, "--mac-address", "92:d0:c6:0a:29:33", "bb", "ip", "link", "show", "eth0").stdout
    assert "link/ether 92:d0:c6:0a:29:33" in out
    res = run(lab, "--mac-address", "zz:d0:c6:0a:29:33", "bb", "true", check=False)
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "not a valid mac address" in res.stderr


def test_cidfile(lab, tmp_path):
    path = tmp_path / "cid"
    cid = lab("run", "-d", "--cidfile", str(path), "--network", "none", "bb", "true").stdout.strip()
    try:
        assert path.read_text() == cid
        before = lab("ps", "-aq").stdout
        res = lab("run", "-d", "--cidfile", str(path), "--network", "none", "bb", "true", check=False)
        assert res.returncode == 125 and res.stderr == (
            f"Error: Container ID file found, make sure the other container isn't running or delete {path}\n")
        assert lab("ps", "-aq").stdout == before  # nothing was made
    finally:
        lab("rm", "-f", cid)


def test_init_runs_as_pid_1_and_reaps(lab):
    out = run(lab, "--network", "none", "--init", "bb", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$").stdout.splitlines()
    assert out[0].startswith("/sbin/docker-init -- sh -c") and out[1] != "1"
    # the host image's root is read-only: the init is under its fresh /run
    assert run(lab, "--network", "none", "--init", "--", "cat", "/proc/1/cmdline").stdout.split("\0")[:3] == ["/run/docker-init", "--", "cat"]
    # without --init the shell is pid 1
    assert run(lab, "--network", "none", "bb", "sh", "-c", "echo $$").stdout == "1\n"
    # an orphan's zombie is reaped by the init: none left after its parent died
    script = "sh -c 'sleep 0.2 & exit 0'; sleep 0.6; grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l"
    assert run(lab, "--network", "none", "--init", "bb", "sh", "-c", script).stdout.strip() == "0"
    c = name()
    lab("create", "--name", c, "--init", "bb", "true")
    try:
        assert lab.json("inspect", c)[0]["HostConfig"]["Init"] is True
    finally:
        lab("rm", c)


def test_stop_signal_and_stop_timeout(lab):
    c = name()
    trap = "trap 'echo got-usr1; exit 3' USR1; trap 'echo got-term; exit 4' TERM; echo ready; while :; do sleep 0.05; done"
    lab("run", "-d", "--name", c, "--network", "none", "--stop-signal", "USR1", "bb", "sh", "-c", trap)
    try:
        _wait_log(lab, c, "ready")
        lab("stop", c)
        [view] = lab.json("inspect", c)
        assert view["State"]["ExitCode"] == 3 and view["Config"]["StopSignal"] == "USR1"
        assert "got-usr1" in lab("logs", c).stdout
    finally:
        lab("rm", "-f", c)
    # the image's STOPSIGNAL is the default
    lab("run", "-d", "--name", c, "--network", "none", "stopsig", "sh", "-c", trap)
    try:
        _wait_log(lab, c, "ready")
        lab("stop", c)
        assert lab.json("inspect", c)[0]["State"]["ExitCode"] == 3
    finally:
        lab("rm", "-f", c)
    # --stop-timeout 0: an ignored signal is followed by SIGKILL at once (137), without -t
    lab("run", "-d", "--name", c, "--network", "none", "--stop-timeout", "0", "bb", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    try:
        _wait_log(lab, c, "ready")
        lab("stop", c)
        [view] = lab.json("inspect", c)
        assert view["State"]["ExitCode"] == 137 and view["Config"]["StopTimeout"] == 0
    finally:
        lab("rm", "-f", c)
    res = run(lab, "--stop-signal", "NOPE", "bb", "true", check=False)
    assert res.returncode == 125 and res.stderr.count("\n") == 1 and "Invalid signal: NOPE" in res.stderr


def _wait_log(lab: Engine, c: str, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in lab("logs", c).stdout:
        assert time.monotonic() < deadline, f"{c} never printed {text}"
        time.sleep(0.05)


def _v1(controller: str) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[2] == "cgroup" and controller in line.split()[3].split(",") for line in f)


def _controller(controller: str) -> bool:
    """This machine has the cgroup controller (v1 mount, or v2's cgroup.controllers)."""
    if _v1(controller):
        return True
    try:
        return controller in open("/sys/fs/cgroup/cgroup.controllers").read().split()
    except OSError:
        return False


def _refused_without(lab: Engine, controller: str, flag: str, value: str, words: str) -> bool:
    """Where this machine has no such controller, the flag is refused in Docker's words (and
    that is what the test asserts); True if the controller is there."""
    if _controller(controller):
        return True
    res = run(lab, "--network", "none", flag, value, "bb", "true", check=False)
    assert res.returncode == 125 and res.stderr.count("\n") == 1 and f"Your kernel does not support {words}" in res.stderr
    return False


def test_memory_limit_is_enforced(lab):
    if not _refused_without(lab, "memory", "-m", "16m", "memory limit"):
        return
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "-m", "16m", "bb", "sleep", "60")
    try:
        [view] = lab.json("inspect", c)
        assert (view["HostConfig"]["Memory"], view["HostConfig"]["MemorySwap"]) == (16 << 20, 32 << 20)
        pid = view["State"]["Pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            groups = dict((line.split(":")[1], line.strip().split(":", 2)[2]) for line in f)
        if _v1("memory"):
            mount = next(line.split()[1] for line in open("/proc/self/mounts") if line.split()[2] == "cgroup" and "memory" in line.split()[3].split(","))
            limit = open(f"{mount}{groups['memory']}/memory.limit_in_bytes").read()
        else:
            limit = open(f"/sys/fs/cgroup{groups['']}/memory.max").read()
        assert int(limit) == 16 << 20 and groups.get("memory", groups.get("", "")).endswith(f"/netcore/{view['Id']}")
    finally:
        lab("rm", "-f", c)
    # a 64 MiB buffer (dd's bs) in a 16 MiB container, swap 16 MiB more: the kernel kills dd (137);
    # the same without a limit, or 4 MiB with it, is fine
    dd = "dd if=/dev/zero of=/dev/null bs={} count=1 2>/dev/null; echo $?"
    assert run(lab, "--network", "none", "-m", "16m", "bb", "sh", "-c", dd.format("64M")).stdout == "137\n"
    assert run(lab, "--network", "none", "-m", "16m", "bb", "sh", "-c", dd.format("4M")).stdout == "0\n"
    assert run(lab, "--network", "none", "bb", "sh", "-c", dd.format("64M")).stdout == "0\n"
    # pid 1 itself over the limit: exit 137 and inspect says OOMKilled
    lab("run", "-d", "--name", c, "--network", "none", "-m", "16m", "bb", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    try:
        assert lab("wait", c).stdout == "137\n"
        assert lab.json("inspect", c)[0]["State"]["OOMKilled"] is True
    finally:
        lab("rm", "-f", c)
    lab("run", "--name", c, "--network", "none", "-m", "16m", "bb", "true")
    try:
        assert lab.json("inspect", c)[0]["State"]["OOMKilled"] is False
    finally:
        lab("rm", "-f", c)


def test_cpus_quota(lab):
    if not _refused_without(lab, "cpu", "--cpus", "0.5", "CPU CFS scheduler"):
        return
    c = name()
    lab("run", "-d", "--name", c, "--network", "none", "--cpus", "0.5", "bb", "sleep", "60")
    try:
        [view] = lab.json("inspect", c)
        assert view["HostConfig"]["NanoCpus"] == 500_000_000
        with open(f"/proc/{view['State']['Pid']}/cgroup") as f:
            groups = dict((line.split(":")[1], line.strip().split(":", 2)[2]) for line in f)
        if _v1("cpu"):
            mount = next(line.split()[1] for line in open("/proc/self/mounts") if line.split()[2] == "cgroup" and "cpu" in line.split()[3].split(","))
            key = next(k for k in groups if "cpu" in k.split(","))
            assert open(f"{mount}{groups[key]}/cpu.cfs_quota_us").read().strip() == "50000"
        else:
            assert open(f"/sys/fs/cgroup{groups['']}/cpu.max").read().split() == ["50000", "100000"]
    finally:
        lab("rm", "-f", c)
    for flag, value, needle in (("--cpus", "many", "rational number"), ("-m", "1k", "Minimum memory limit"), ("-m", "lots", "invalid size")):
        res = run(lab, flag, value, "bb", "true", check=False)
        assert res.returncode == 125 and res.stderr.count("\n") == 1 and needle in res.stderr, res.stderr
