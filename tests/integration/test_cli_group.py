"""Issue 16 item 6 through the CLI, on real containers: the ``container`` group and the other
groups' aliases, ``info``/``system info``, ``version`` (also with no engine), ``system df``,
``system prune``, ``container prune``, ``top``, ``stats --no-stream``, ``pause``/``unpause``
(and stop/kill/rm of a paused container), ``rename``, ``cp`` both ways (``-`` too), ``diff``,
``events`` (``--since/--until/--filter/--format``)."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import tarfile
import time

import pytest

from cli_engine import NETCORE, Engine
from image_archives import busybox_rootfs_tar, write

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("group")
    (tmp / "eng").mkdir()
    eng = Engine(tmp / "eng").start()
    eng("image", "import", write(str(tmp / "bb.tar"), busybox_rootfs_tar()), "bb")
    yield eng
    eng.stop()


def uniq(prefix: str = "g") -> str:
    return f"{prefix}{random.randbytes(3).hex()}"


def sleeper(lab: Engine, name: str, *extra: str) -> str:
    return lab("run", "-d", "--name", name, "--network", "none", *extra, "bb", "sh", "-c", "sleep 1000").stdout.strip()


def state_of(lab: Engine, name: str) -> dict:
    return lab.json("inspect", name)[0]["State"]


def proc_states(pid: int) -> set[str]:
    """The states of every process in the pid namespace of ``pid`` (host view)."""
    ns = os.readlink(f"/proc/{pid}/ns/pid")
    out = set()
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/pid") == ns:
                    out.add(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
    return out


# ---------------------------------------------------------------- aliases ---

ALIASES = [
    (["container", "ls", "-a", "-q"], ["ps", "-a", "-q"]),
    (["container", "list", "-a", "-q"], ["ps", "-a", "-q"]),
    (["container", "ps", "-a", "-q"], ["ps", "-a", "-q"]),
    (["image", "list", "-q"], ["images", "-q"]),
    (["image", "ls", "-q"], ["images", "-q"]),
    (["network", "list", "-q"], ["network", "ls", "-q"]),
    (["volume", "list", "-q"], ["volume", "ls", "-q"]),
]


@pytest.mark.parametrize("alias,plain", ALIASES, ids=[" ".join(a[:2]) for a, _ in ALIASES])
def test_aliases_print_what_the_plain_command_prints(lab, alias, plain):
    name = uniq()
    sleeper(lab, name, "-v", "/data")  # an anonymous volume for ``volume list``
    try:
        a, p = lab(*alias), lab(*plain)
        assert a.returncode == p.returncode == 0
        assert a.stdout == p.stdout and a.stdout.strip()
    finally:
        lab("rm", "-f", "-v", name)


def test_container_group_verbs_act_as_the_top_level_ones(lab, tmp_path):
    name = uniq()
    cid = lab("container", "run", "-d", "--name", name, "--network", "none", "bb", "sh", "-c", "echo hi; sleep 1000").stdout.strip()
    assert len(cid) == 64
    assert lab("container", "inspect", name).stdout == lab("inspect", name).stdout
    deadline = time.monotonic() + 10
    while "hi" not in lab("container", "logs", name).stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab("container", "logs", name).stdout == "hi\n"
    assert lab("container", "exec", name, "echo", "x").stdout == "x\n"
    assert lab("container", "stop", "-t", "0", name).stdout.strip() == name
    assert state_of(lab, name)["Status"] == "exited"
    assert lab("container", "start", name).stdout.strip() == name
    assert lab("container", "kill", name).stdout.strip() == name
    assert lab("container", "wait", name).stdout.strip() == "137"
    assert lab("container", "remove", name).stdout.strip() == name
    res = lab("container", "inspect", name, check=False)
    assert res.returncode == 1 and f": {name}" in res.stderr and "No such" in res.stderr  # inspect's own words (object)


def test_unknown_verb_of_the_container_group_is_one_line(lab):
    res = lab("container", "frobnicate", check=False)
    assert res.returncode == 1 and "invalid choice: 'frobnicate'" in res.stderr  # Docker: an unknown command exits 1 and "Traceback" not in res.stderr


# ---------------------------------------------------------------- info/version

def test_info_layout_and_format(lab):
    name = uniq()
    sleeper(lab, name)
    try:
        lab("pause", name)
        out = lab("info").stdout
        sys_out = lab("system", "info").stdout
        lines = [line for line in out.splitlines()]
        assert "Server:" in lines and "Client:" in lines
        info = lab.json("info", "--format", "json")
        assert info["ContainersPaused"] >= 1 and info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"] == info["Containers"]
        assert f" Containers: {info['Containers']}" in lines
        assert f"  Paused: {info['ContainersPaused']}" in lines
        assert f" Docker Root Dir: {lab.root}" in lines
        assert f" Kernel Version: {os.uname().release}" in lines
        assert f" CPUs: {os.cpu_count()}" in lines
        assert any(line.startswith("  Network: ") and "bridge" in line.split() and "host" in line.split() for line in lines)
        assert " Images: 1" in lines
        assert sys_out.replace(" ", "") == out.replace(" ", "")
        assert lab("info", "--format", "{{.DockerRootDir}} {{.NCPU}}").stdout == f"{lab.root} {os.cpu_count()}\n"
    finally:
        lab("rm", "-f", name)


def test_version_with_and_without_an_engine(lab, tmp_path):
    res = lab("version")
    assert res.stdout.startswith("Client:\n Version:") and "\nServer:\n Engine:\n  Version:" in res.stdout
    assert lab("version", "--format", "{{.Server.Version}}").stdout.strip() == lab("--version").stdout.split()[-1]
    env = {**lab.env, "NETCORE_HOST": f"unix://{tmp_path}/none.sock"}
    down = subprocess.run([*NETCORE, "version"], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1
    assert down.stdout.startswith("Client:\n Version:") and "Server:" not in down.stdout
    assert len(down.stderr.strip().splitlines()) == 1 and "cannot connect to the netcore engine" in down.stderr


# ---------------------------------------------------------------- top/stats -

def test_top_lists_the_containers_processes_only(lab):
    name = uniq()
    sleeper(lab, name)
    try:
        out = lab("top", name).stdout.splitlines()
        assert out[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        pid1 = state_of(lab, name)["Pid"]
        pids = {int(line.split()[1]) for line in out[1:]}
        assert pid1 in pids and os.getpid() not in pids and 1 not in pids
        assert any("sleep 1000" in line for line in out[1:])
        custom = lab("container", "top", name, "-o", "pid,comm").stdout.splitlines()
        assert custom[0].split() == ["PID", "COMMAND"] and any(line.split()[1] == "sleep" for line in custom[1:])
        bad = lab("top", name, "--no-such-ps-flag", check=False)
        assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    finally:
        lab("rm", "-f", name)
    stopped = lab("top", name, check=False)
    assert stopped.returncode == 1 and "No such container" in stopped.stderr


def test_stats_no_stream_columns_and_format(lab):
    name = uniq()
    lab("run", "-d", "--name", name, "--network", "none", "bb", "sh", "-c",
        "dd if=/dev/zero of=/dev/null bs=1k count=2000000 & head -c 20000000 /dev/zero > /tmp/ballast; sleep 1000")
    try:
        out = lab("stats", "--no-stream", name).stdout.splitlines()
        assert [h.strip() for h in out[0].split("   ") if h.strip()] == [
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
        assert len(out) == 2 and name in out[1]
        row = json.loads(lab("stats", "--no-stream", "--format", "json", name).stdout)
        assert row["Name"] == name and int(row["PIDs"]) >= 2
        used, limit = row["MemUsage"].split(" / ")
        assert used.endswith(("KiB", "MiB")) and limit.endswith("GiB")
        assert lab("container", "stats", "--no-stream", "--format", "{{.Name}}", name).stdout == f"{name}\n"
        tab = lab("stats", "--no-stream", "--format", "table {{.Name}}\\t{{.PIDs}}", name).stdout.splitlines()
        assert [line.split() for line in tab] == [["NAME", "PIDS"], [name, row["PIDs"]]]
        assert name in lab("stats", "--no-stream").stdout  # the running ones by default
    finally:
        lab("rm", "-f", name)


def test_stats_counts_the_containers_network_traffic(lab, subnet):
    net, a, b = uniq("n"), uniq(), uniq()
    lab("network", "create", "--subnet", subnet, net)
    try:
        lab("run", "-d", "--name", a, "--network", net, "bb", "sleep", "1000")
        lab("run", "--rm", "--name", b, "--network", net, "bb", "ping", "-c", "3", "-s", "1000", "-W", "1", a)
        row = json.loads(lab("stats", "--no-stream", "--format", "json", a).stdout)
        rx, tx = row["NetIO"].split(" / ")
        assert rx.endswith("kB") and tx.endswith("kB")  # three 1 kB pings in, three replies out
    finally:
        lab("rm", "-f", a)
        lab("network", "rm", net)


# ---------------------------------------------------------------- pause -----

def test_pause_unpause_and_what_a_paused_container_does(lab):
    name = uniq()
    lab("run", "-d", "--name", name, "--network", "none", "bb", "sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait")
    try:
        pid = state_of(lab, name)["Pid"]
        assert lab("pause", name).stdout.strip() == name
        st = state_of(lab, name)
        assert st["Status"] == "paused" and st["Paused"] is True and st["Running"] is True
        assert proc_states(pid) == {"T"}
        assert "(Paused)" in lab("ps").stdout
        again = lab("pause", name, check=False)
        assert again.returncode == 1 and "is already paused" in again.stderr
        rm = lab("rm", name, check=False)
        assert rm.returncode == 1 and "container is paused and must be unpaused first" in rm.stderr
        ex = lab("exec", name, "true", check=False)
        assert ex.returncode == 1 and "is paused, unpause the container before exec" in ex.stderr
        assert lab("unpause", name).stdout.strip() == name
        assert proc_states(pid) == {"S"} and state_of(lab, name)["Status"] == "running"
        no = lab("unpause", name, check=False)
        assert no.returncode == 1 and "is not paused" in no.stderr
        lab("container", "pause", name)
        assert lab("stop", "-t", "5", name).stdout.strip() == name  # a paused container stops (SIGTERM lands)
        st = state_of(lab, name)
        assert st["Status"] == "exited" and st["ExitCode"] == 143 and st["Paused"] is False
    finally:
        lab("rm", "-f", name)
    stopped = lab("pause", name, check=False)
    assert stopped.returncode == 1


def test_kill_and_rm_force_of_a_paused_container(lab):
    a, b = uniq(), uniq()
    sleeper(lab, a)
    sleeper(lab, b)
    lab("pause", a, b)
    assert lab("kill", a).stdout.strip() == a
    assert state_of(lab, a)["Status"] == "exited"
    assert lab("rm", "-f", b).stdout.strip() == b
    lab("rm", a)


# ---------------------------------------------------------------- rename ----

def test_rename(lab):
    old, new, other = uniq(), uniq(), uniq()
    sleeper(lab, old)
    sleeper(lab, other)
    try:
        assert lab("rename", old, new).stdout == ""
        assert lab.json("inspect", new)[0]["Name"] == "/" + new
        assert lab("inspect", old, check=False).returncode == 1
        taken = lab("rename", new, other, check=False)
        assert taken.returncode == 1 and f'The container name "/{other}" is already in use' in taken.stderr
        bad = lab("container", "rename", new, "bad name!", check=False)
        assert bad.returncode == 1 and "Invalid container name" in bad.stderr
        sleeper(lab, old)  # the old name is free again
        lab("rm", "-f", old)
    finally:
        lab("rm", "-f", new, other)


# ---------------------------------------------------------------- cp --------

def test_cp_both_ways_running_and_stopped(lab, tmp_path):
    name = uniq()
    sleeper(lab, name)
    try:
        src = tmp_path / "hello.txt"
        src.write_text("hello\n")
        (tmp_path / "dir" / "sub").mkdir(parents=True)
        (tmp_path / "dir" / "sub" / "f").write_text("deep\n")
        lab("cp", str(src), f"{name}:/tmp/")
        lab("cp", str(src), f"{name}:/tmp/renamed.txt")
        lab("cp", str(tmp_path / "dir"), f"{name}:/tmp/dir")
        assert lab("exec", name, "cat", "/tmp/hello.txt", "/tmp/renamed.txt", "/tmp/dir/sub/f").stdout == "hello\nhello\ndeep\n"
        lab("exec", name, "sh", "-c", "echo made inside > /etc/made")
        lab("cp", f"{name}:/etc/made", str(tmp_path / "out.txt"))
        assert (tmp_path / "out.txt").read_text() == "made inside\n"
        lab("exec", name, "ln", "-s", "/etc/made", "/etc/link")
        lab("cp", f"{name}:/etc/link", str(tmp_path / "link"))
        assert os.readlink(tmp_path / "link") == "/etc/made"  # the link itself, as Docker
        lab("cp", "-L", f"{name}:/etc/link", str(tmp_path / "followed"))
        assert (tmp_path / "followed").read_text() == "made inside\n"
        theirs = tmp_path / "theirs.txt"
        theirs.write_text("x\n")
        os.chown(theirs, 4321, 4322)
        lab("exec", name, "mkdir", "/srv")
        lab("cp", str(theirs), f"{name}:/srv/owned")
        lab("cp", "-a", str(theirs), f"{name}:/srv/kept")  # -a keeps uid and gid
        assert lab("exec", name, "stat", "-c", "%u:%g", "/srv/owned", "/srv/kept").stdout.split() == ["0:0", "4321:4322"]
        lab("cp", f"{name}:/tmp/dir", str(tmp_path / "back"))
        assert (tmp_path / "back" / "sub" / "f").read_text() == "deep\n"
        tar = subprocess.run([*NETCORE, "cp", f"{name}:/etc/made", "-"], env=lab.env, capture_output=True, timeout=30)
        assert tar.returncode == 0
        with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
            assert t.getnames() == ["made"] and t.extractfile("made").read() == b"made inside\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            info = tarfile.TarInfo("fromstdin")
            info.size = 3
            t.addfile(info, io.BytesIO(b"in\n"))
        put = subprocess.run([*NETCORE, "cp", "-", f"{name}:/tmp"], input=buf.getvalue(), env=lab.env, capture_output=True, timeout=30)
        assert put.returncode == 0, put.stderr
        assert lab("exec", name, "cat", "/tmp/fromstdin").stdout == "in\n"
        missing = lab("cp", f"{name}:/nope", str(tmp_path / "x"), check=False)
        assert missing.returncode == 1 and "Could not find the file /nope in container" in missing.stderr
        assert not (tmp_path / "x").exists()
        both = lab("cp", f"{name}:/a", f"{name}:/b", check=False)
        assert both.returncode == 1 and "copying between containers is not supported" in both.stderr
        lab("stop", "-t", "0", name)
        lab("cp", str(src), f"{name}:/etc/while-stopped")  # a stopped container, as Docker allows
        lab("cp", f"{name}:/etc/made", str(tmp_path / "stopped.txt"))
        assert (tmp_path / "stopped.txt").read_text() == "made inside\n"
        lab("start", name)
        assert lab("exec", name, "cat", "/etc/while-stopped").stdout == "hello\n"
    finally:
        lab("rm", "-f", name)


# ---------------------------------------------------------------- diff ------

def test_cp_sees_the_containers_mounts(lab, tmp_path):
    name = uniq()
    sleeper(lab, name, "--tmpfs", "/scratch", "-v", "/data")
    try:
        lab("exec", name, "sh", "-c", "echo t > /scratch/t && echo v > /data/v")
        lab("cp", f"{name}:/scratch/t", str(tmp_path / "t"))
        lab("cp", f"{name}:/data/v", str(tmp_path / "v"))
        assert (tmp_path / "t").read_text() == "t\n" and (tmp_path / "v").read_text() == "v\n"
        (tmp_path / "in").write_text("in\n")
        lab("cp", str(tmp_path / "in"), f"{name}:/scratch/")
        assert lab("exec", name, "cat", "/scratch/in").stdout == "in\n"
    finally:
        lab("rm", "-f", "-v", name)


def test_diff_adds_changes_and_deletes(lab):
    name = uniq()
    lab("run", "--name", name, "--network", "none", "bb", "sh", "-c",
        "mkdir /srv && echo x > /srv/new && echo x > /etc/new && rm /bin/vi && echo y >> /etc/passwd")
    try:
        lines = lab("diff", name).stdout.splitlines()
        assert "A /srv" in lines and "A /srv/new" in lines and "A /etc/new" in lines
        assert "D /bin/vi" in lines and "C /bin" in lines
        assert "C /etc/passwd" in lines and "C /etc" in lines
        assert not any(line.endswith(("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")) for line in lines)
        assert lines == sorted(lines, key=lambda line: line[2:])
        assert lab("container", "diff", name).stdout.splitlines() == lines
    finally:
        lab("rm", "-f", name)
    fresh = uniq()
    sleeper(lab, fresh, "-v", "/data", "--tmpfs", "/scratch")
    try:
        assert lab("diff", fresh).stdout == ""  # a fresh container changed nothing (mount points are no change)
    finally:
        lab("rm", "-f", "-v", fresh)


# ---------------------------------------------------------------- prune/df --

def test_container_prune_and_system_df(lab):
    keep, gone = uniq(), uniq()
    sleeper(lab, keep)
    lab("run", "--name", gone, "--network", "none", "bb", "sh", "-c", "head -c 5000 /dev/zero > /junk")
    try:
        df = lab("system", "df").stdout.splitlines()
        assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert [line.split()[0] for line in df[1:]] == ["Images", "Containers", "Local", "Build"]
        assert df[1].split()[1:3] == ["1", "1"] and df[2].split()[1:3] == ["2", "1"]  # bb, in use; keep runs, gone exited
        assert lab("system", "df", "-v").stdout.startswith("Images space usage:")
        no = subprocess.run([*NETCORE, "container", "prune"], input="n\n", env=lab.env, capture_output=True, text=True, timeout=30)
        assert no.returncode == 0 and "WARNING! This will remove all stopped containers." in no.stdout
        assert lab("inspect", gone).returncode == 0
        kept = lab("container", "prune", "-f", "--filter", "until=10m").stdout  # made just now: not before 10 minutes ago
        assert kept == "Total reclaimed space: 0B\n"
        from runtime.api.client import Client

        api = Client(f"unix://{lab.socket}", lab.root, autostart=False)  # the CLI's run has no --label yet: the API's Labels
        labelled = api.request("POST", "/containers/create", {"Name": uniq(), "Image": "bb", "Cmd": ["true"], "Labels": {"tier": "x"},
                                                              "Networks": [{"name": "none"}]})["Id"]
        other = api.request("POST", "/containers/create", {"Name": uniq(), "Image": "bb", "Cmd": ["true"],
                                                           "Networks": [{"name": "none"}]})["Id"]
        out = lab("container", "prune", "-f", "--filter", "label=tier=x").stdout
        assert out.splitlines()[:2] == ["Deleted Containers:", labelled]
        assert lab("inspect", other).returncode == 0
        lab("rm", other)
        bad = lab("container", "prune", "-f", "--filter", "colour=red", check=False)
        assert bad.returncode == 1 and "invalid filter 'colour'" in bad.stderr
        gone_id = lab.json("inspect", gone)[0]["Id"]
        out = lab("container", "prune", "-f").stdout
        assert out.startswith("Deleted Containers:\n") and gone_id in out.split()
        assert "Total reclaimed space: 5" in out  # 5 kB of /junk, at least
        assert lab("inspect", gone, check=False).returncode == 1
        assert lab("inspect", keep).returncode == 0
    finally:
        lab("rm", "-f", keep, gone, check=False)


def test_system_prune(lab, subnet):
    net, gone, since = uniq("n"), uniq(), f"{time.time():.3f}"
    lab("network", "create", "--subnet", subnet, net)
    lab("run", "--name", gone, "--network", "none", "-v", "/data", "bb", "true")
    volume = lab.json("inspect", gone)[0]["Mounts"][0]["Name"]
    res = subprocess.run([*NETCORE, "system", "prune", "--volumes"], input="y\n", env=lab.env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("WARNING! This will remove:\n  - all stopped containers\n")
    assert "  - all anonymous volumes not used by at least one container\n" in res.stdout
    assert "Deleted Volumes:\n" in res.stdout and volume in res.stdout.split()
    assert volume not in lab("volume", "ls", "-q").stdout.split()
    assert "Deleted Networks:\n" in res.stdout and net in res.stdout.split()
    assert "Deleted Containers:\n" in res.stdout
    assert res.stdout.rstrip().splitlines()[-1].startswith("Total reclaimed space: ")
    assert lab("network", "inspect", net, check=False).returncode == 1
    assert lab("inspect", gone, check=False).returncode == 1
    destroyed = lab("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", "event=destroy",
                    "--format", "{{.Type}} {{.Actor.Attributes.name}}").stdout.splitlines()
    assert f"network {net}" in destroyed and f"container {gone}" in destroyed
    assert lab("image", "inspect", "bb").returncode == 0  # a named image is no dangling one
    bad = lab("system", "prune", "-f", "--filter", "nonsense", check=False)
    assert bad.returncode == 125 and "bad format of filter" in bad.stderr


# ---------------------------------------------------------------- events ----

def test_events_since_until_filter_format(lab, subnet):
    name, net = uniq(), uniq("n")
    since = f"{time.time():.3f}"
    lab("network", "create", "--subnet", subnet, net)
    lab("run", "-d", "--name", name, "--network", net, "bb", "sleep", "1000")
    lab("pause", name)
    lab("unpause", name)
    lab("rename", name, name + "x")
    lab("rm", "-f", name + "x")
    lab("network", "rm", net)
    until = f"{time.time():.3f}"
    res = lab("events", "--since", since, "--until", until, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    lines = res.stdout.splitlines()
    expected = [f"network create {net}", f"container create {name}", f"network connect {net}", f"container start {name}",
                f"container pause {name}", f"container unpause {name}", f"container rename {name}x",
                f"container die {name}x", f"network disconnect {net}",
                f"container destroy {name}x", f"network destroy {net}"]
    seen = [line for line in lines if line in expected]
    assert seen == expected, lines  # all of them, in the order they happened
    only = lab("events", "--since", since, "--until", until, "--filter", "type=network", "--filter", "event=create",
               "--format", "json").stdout.splitlines()
    assert [json.loads(x)["Actor"]["Attributes"]["name"] for x in only] == [net]
    plain = lab("events", "--since", since, "--until", until, "--filter", f"container={name}x", "--filter", "event=destroy").stdout
    assert plain.count("\n") == 1 and f" container destroy " in plain and f"name={name}x" in plain
    again, since = uniq(), f"{time.time():.3f}"
    sleeper(lab, again)
    lab("restart", "-t", "0", again)
    lab("rm", "-f", again)
    actions = lab("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", f"container={again}",
                  "--filter", "type=container", "--format", "{{.Action}}").stdout.split()
    assert actions == ["create", "start", "die", "stop", "start", "restart", "kill", "die", "destroy"]  # rm -f: kill, die, destroy


def test_events_of_health_attach_and_rm_force(lab):
    """``health_status: healthy|unhealthy`` when the healthcheck's status changes, ``attach``
    when a client attaches, ``kill`` (signal 9) before ``die`` on ``rm -f``: Docker's events."""
    from runtime.api.client import Client

    name, since = uniq(), f"{time.time():.3f}"
    client = Client(f"unix://{lab.socket}", autostart=False)
    client.request("POST", "/containers/create", {
        "Name": name, "Image": "bb", "Cmd": ["sh", "-c", "touch /tmp/ok; sleep 1000"], "Networks": [{"name": "none"}],
        "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 50_000_000, "Retries": 1},
    })
    lab("start", name)

    def health() -> str:
        return state_of(lab, name).get("Health", {}).get("Status", "")

    deadline = time.monotonic() + 20
    while health() != "healthy":
        assert time.monotonic() < deadline, state_of(lab, name)
        time.sleep(0.05)
    lab("exec", name, "rm", "/tmp/ok")
    while health() != "unhealthy":
        assert time.monotonic() < deadline, state_of(lab, name)
        time.sleep(0.05)
    attached = subprocess.Popen([*NETCORE, "attach", "--no-stdin", name], env=lab.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        def actions() -> list[str]:
            return lab("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", f"container={name}",
                       "--format", "{{.Action}}").stdout.splitlines()

        while "attach" not in actions():
            assert time.monotonic() < deadline and attached.poll() is None, "no attach event"
            time.sleep(0.05)
        lab("rm", "-f", name)
        attached.wait(20)
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait()
        lab("rm", "-f", name, check=False)
    assert actions() == ["create", "start", "health_status: healthy", "health_status: unhealthy", "attach", "kill", "die", "destroy"]
    kill = lab("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", f"container={name}",
               "--filter", "event=kill", "--format", "{{.Actor.Attributes.signal}}").stdout
    assert kill == "9\n"


def test_events_streams_until_interrupted(lab):
    name = uniq()
    proc = subprocess.Popen([*NETCORE, "events", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}"],
                            env=lab.env, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        lab("run", "-d", "--name", name, "--network", "none", "bb", "true")
        import select

        assert select.select([proc.stdout], [], [], 20)[0], "no event within 20 s"
        assert proc.stdout.readline().strip() == name
    finally:
        proc.terminate()
        proc.wait(10)
        lab("rm", "-f", name)
    bad = lab("events", "--since", "yesterday-ish", check=False)
    assert bad.returncode == 1 and "failed to parse value as time or duration" in bad.stderr


def test_image_prune_removes_dangling_images_only(lab, tmp_path):
    since = f"{time.time():.3f}"
    first = lab("image", "import", write(str(tmp_path / "f.tar"), busybox_rootfs_tar([("etc/marker", b"f")]))).stdout.strip()
    tag = uniq("t")
    lab("tag", first, tag)
    lab("rmi", tag)  # its only name: the image goes too, as in Docker
    vol = lab("volume", "create").stdout.strip()
    lab("volume", "rm", vol)
    dangling = lab("image", "import", write(str(tmp_path / "d.tar"), busybox_rootfs_tar([("etc/marker", b"d")]))).stdout.strip()
    assert dangling.startswith("sha256:")
    out = lab("image", "prune", "-f").stdout
    assert out.startswith("Deleted Images:\n") and f"deleted: {dangling}" in out.splitlines()
    assert out.splitlines()[-1].startswith("Total reclaimed space: ")
    assert lab("image", "inspect", dangling, check=False).returncode == 1
    assert lab("image", "inspect", "bb").returncode == 0
    seen = lab("events", "--since", since, "--until", f"{time.time():.3f}", "--filter", "type=image", "--filter", "type=volume",
               "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}").stdout.splitlines()
    assert seen == [f"image import {first}", f"image tag {first}", f"image untag {tag}:latest", f"image delete {first}",
                    f"volume create {vol}", f"volume destroy {vol}", f"image import {dangling}", f"image delete {dangling}"]


def test_stats_streams_until_interrupted(lab):
    import select

    name = uniq()
    sleeper(lab, name)
    proc = subprocess.Popen([*NETCORE, "stats", "--format", "{{.Name}} {{.PIDs}}", name], env=lab.env, stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while len(lines) < 3:
            assert select.select([proc.stdout], [], [], 20)[0], f"stats printed {lines} only"
            lines.append(proc.stdout.readline().strip())
        assert lines == [f"{name} 1"] * 3  # sh became sleep; redrawn each second
    finally:
        proc.terminate()
        proc.wait(10)
        lab("rm", "-f", name)


# ---------------------------------------------------------------- bad input -

BAD = [  # argv, exit code (125: the CLI refused a flag or value, 1: the arguments, as Docker), words of the one line on stderr
    (["pause", "nosuch"], 1, "No such container: nosuch"),
    (["unpause", "nosuch"], 1, "No such container: nosuch"),
    (["container", "top", "nosuch"], 1, "No such container: nosuch"),
    (["stats", "--no-stream", "nosuch"], 1, "No such container: nosuch"),
    (["rename", "nosuch", "other"], 1, "No such container: nosuch"),
    (["cp", "nosuch:/etc/passwd", "/tmp/never-written"], 1, "No such container: nosuch"),
    (["diff", "nosuch"], 1, "No such container: nosuch"),
    (["rename", "onlyone"], 1, "the following arguments are required: NEW_NAME"),
    (["cp", "/a", "/b"], 1, "must specify at least one container source"),
    (["events", "--until", "soonish"], 1, "failed to parse value as time or duration"),
    (["container", "prune", "-f", "--filter", "nokey"], 125, "bad format of filter"),
    (["system", "df", "--bogus"], 125, "unrecognized arguments: --bogus"),
    (["info", "--format", "{{.Nope}}"], 1, 'map has no entry for key "Nope"'),
    (["image", "prune", "-f", "extra"], 1, "unrecognized arguments: extra"),
]


@pytest.mark.parametrize("argv,code,words", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_input_is_one_line_and_changes_nothing(lab, argv, code, words):
    before = lab("ps", "-a", "-q", "--no-trunc").stdout
    res = lab(*argv, check=False)
    assert res.returncode == code and words in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert lab("ps", "-a", "-q", "--no-trunc").stdout == before
    assert not os.path.exists("/tmp/never-written")


def test_a_paused_container_stays_paused_across_an_engine_restart(lab):
    name = uniq()
    sleeper(lab, name)
    try:
        pid = state_of(lab, name)["Pid"]
        lab("pause", name)
        lab.kill9()
        lab.start()
        st = state_of(lab, name)
        assert st["Status"] == "paused" and st["Pid"] == pid and proc_states(pid) == {"T"}
        lab("unpause", name)
        assert proc_states(pid) == {"S"} and state_of(lab, name)["Status"] == "running"
    finally:
        lab("rm", "-f", name)
