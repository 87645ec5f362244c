"""Container process supervisor against real namespaces (root, no mocks)."""
from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime.engine import process as proc
from runtime.engine.exitwatch import ExitWatcher
from runtime.engine.process import Launcher, ProcessSpec, StartError

pytestmark = pytest.mark.root  # skipped by tests/conftest.py unless root

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="module")
def netns():
    name = f"nct-{uuid.uuid4().hex[:8]}"  # the suite's leak check covers nct-*
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.fixture
def make(tmp_path):
    """Factory for specs/containers; stops whatever is left at teardown."""
    started: list[proc.ProcessInfo] = []
    launcher = Launcher(str(tmp_path / "launcher"))

    def spec(*argv: str, **kw) -> ProcessSpec:
        fields = dict(container_id=f"c-{uuid.uuid4().hex[:8]}", argv=list(argv), env={},
                      workdir=None, hostname=f"h{uuid.uuid4().hex[:6]}", netns_path=None,
                      bind_files={}, state_dir=str(tmp_path / uuid.uuid4().hex[:8]))
        fields.update(kw)
        return ProcessSpec(**fields)

    def start(*argv: str, **kw) -> tuple[ProcessSpec, proc.ProcessInfo]:
        s = spec(*argv, **kw)
        info = launcher.start(s)
        started.append(info)
        return s, info

    start.spec = spec
    start.started = started
    start.launcher = launcher
    yield start
    for info in started:
        proc.stop(info, timeout=0)


def wait_log(spec: ProcessSpec, text: str, timeout: float = 5.0) -> None:
    """Wait until the container logged ``text`` (e.g. its signal trap is installed)."""
    deadline = time.monotonic() + timeout
    while text not in Path(proc.log_path(spec.state_dir)).read_text():
        assert time.monotonic() < deadline, f"no {text!r} in log"
        time.sleep(0.005)


def wait_exit(spec: ProcessSpec, info: proc.ProcessInfo, timeout: float = 5.0) -> tuple[int | None, str]:
    """Wait for the monitor to finish on its own; return (exit code, log)."""
    fd = os.pidfd_open(info.monitor_pid)
    try:
        assert select.select([fd], [], [], timeout)[0], "container did not exit"
    finally:
        os.close(fd)
    proc.stop(info, timeout=0)  # reaps the monitor
    with open(proc.log_path(spec.state_dir)) as f:
        return proc.read_exit_code(spec.state_dir), f.read()


def test_own_netns_hostname_and_pid1(make, netns):
    s, info = make("sh", "-c", "hostname; echo pid=$$; ip -o link", netns_path=netns)
    code, out = wait_exit(s, info)
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == s.hostname and lines[1] == "pid=1"
    links = [line.split(":")[1].strip() for line in lines[2:]]
    assert links == ["lo"]
    assert socket.gethostname() != s.hostname


def test_host_network_and_uts(make, netns):
    # Compare namespace identities: host links come and go under concurrent tests.
    script = "hostname; readlink /proc/self/ns/net /proc/self/ns/uts /proc/self/ns/pid"
    s, info = make("sh", "-c", script, hostname=None)
    code, out = wait_exit(s, info)
    host = [os.readlink(f"/proc/self/ns/{ns}") for ns in ("net", "uts", "pid")]
    name, net, uts, pid = out.split()
    assert code == 0
    assert (name, net, uts) == (socket.gethostname(), host[0], host[1])
    assert pid != host[2]
    s, info = make("sh", "-c", script, netns_path=netns)
    _, out = wait_exit(s, info)
    assert out.split()[1] == f"net:[{os.stat(netns).st_ino}]"
    assert out.split()[2] != host[1]  # own UTS namespace when a hostname is given


def test_containers_hold_no_netns_mounts(make, netns):
    """A container's mount namespace has none of the sandboxes' netns mounts, neither those
    made before it nor after it: each would be kernel work per container and sandbox, and
    would keep another sandbox's netns reachable from inside."""
    def netns_mounts(pid: int) -> list[str]:
        return [f for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if (f := line.split()[4]).startswith("/run/netns")]

    assert netns_mounts(os.getpid())  # the host has them: /run/netns and the fixture's netns
    s, info = make("sleep", "30", netns_path=netns)
    later = f"nct-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", later], check=True)
    try:
        assert f"/run/netns/{later}" in netns_mounts(os.getpid())
        assert netns_mounts(info.pid) == []
        assert os.readlink(f"/proc/{info.pid}/ns/net") == f"net:[{os.stat(netns).st_ino}]"
    finally:
        subprocess.run(["ip", "netns", "del", later], check=True)


def test_bind_files(make, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("10.0.0.2 peer\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.53\n")
    before = Path("/etc/hosts").read_bytes()
    s, info = make("sh", "-c", "cat /etc/hosts /etc/resolv.conf; echo '1.2.3.4 x' >> /etc/hosts",
                   bind_files={"/etc/hosts": str(hosts), "/etc/resolv.conf": str(resolv)})
    code, out = wait_exit(s, info)
    assert code == 0
    assert out == "10.0.0.2 peer\nnameserver 10.0.0.53\n"
    assert hosts.read_text().endswith("1.2.3.4 x\n")  # read-write
    assert Path("/etc/hosts").read_bytes() == before


def test_env_and_workdir(make, tmp_path, monkeypatch):
    monkeypatch.setenv("NETCORE_ENGINE_SECRET", "leak")
    given = {"FOO": "bar baz", "IFS": ":", "n": "1", "pid": "x", "line": "y"}  # shell-ish names
    s, info = make("/usr/bin/env", env=given, workdir="/usr/share")
    code, out = wait_exit(s, info)
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert code == 0
    assert env == {**given, "PATH": proc.DEFAULT_PATH, "HOSTNAME": s.hostname, "PWD": "/usr/share"}  # bwrap sets PWD
    s, info = make("pwd", workdir="/usr/share")
    assert wait_exit(s, info) == (0, "/usr/share\n")


@pytest.mark.parametrize("argv,expected", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["sh", "-c", "kill -9 $$"], 0),  # pid 1 ignores a signal from inside its namespace
])
def test_exit_codes(make, argv, expected):
    s, info = make(*argv)
    code, out = wait_exit(s, info)
    assert code == expected


def test_missing_command_refused_before_start(make):
    with pytest.raises(StartError, match='exec: "no-such-command-xyz": executable file not found in \\$PATH'):
        make.launcher.start(make.spec("no-such-command-xyz"))
    with pytest.raises(StartError, match='exec: "/etc/passwd": permission denied'):
        make.launcher.start(make.spec("/etc/passwd"))


def test_stop_falls_back_to_sigkill(make):
    s, info = make("sh", "-c", "trap '' TERM; echo ready; sleep 100")
    wait_log(s, "ready")
    t = time.monotonic()
    proc.stop(info, timeout=0.3)
    assert 0.3 <= time.monotonic() - t < 3
    assert proc.read_exit_code(s.state_dir) == 137
    assert not proc.is_running(info)


def test_pid1_semantics(make):
    # Default-action SIGTERM from the host to the namespace's init is dropped by the kernel.
    s, info = make("sleep", "100")
    proc.kill(info, signal.SIGTERM)
    time.sleep(0.1)
    assert proc.is_running(info)
    # With a handler it is delivered; stop() then returns promptly with its exit code.
    s, info = make("sh", "-c", "trap 'exit 7' TERM; echo ready; sleep 100 & wait")
    wait_log(s, "ready")
    t = time.monotonic()
    proc.stop(info, timeout=5)
    assert time.monotonic() - t < 1
    assert proc.read_exit_code(s.state_dir) == 7
    with pytest.raises(proc.NotRunningError):
        proc.kill(info, signal.SIGTERM)


def test_load_and_pid_reuse_detection(make):
    s, info = make("sleep", "100")
    assert proc.load(s.state_dir) == info
    assert json.loads(json.dumps(dataclasses.asdict(info))) == dataclasses.asdict(info)
    assert proc.is_running(info)
    assert proc.read_exit_code(s.state_dir) is None
    bogus = proc.ProcessInfo(info.monitor_pid, info.pid, info.started_at, info.monitor_start, info.pid_start + 1)
    assert not proc.is_running(bogus)
    proc.stop(info, timeout=0)
    assert not proc.is_running(info)
    assert proc.read_exit_code(s.state_dir) == 137


def test_exec_enters_namespaces(make, netns):
    s, info = make("sleep", "100", env={"FOO": "bar"}, netns_path=netns)
    argv = proc.exec_argv(info, ["sh", "-c", "hostname; echo $$ $FOO $BAR; pwd; ip -o link | wc -l"],
                          workdir="/tmp", env={"BAR": "baz"})
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=5, close_fds=False).stdout.split("\n")
    assert out[0] == s.hostname
    pid, foo, bar = out[1].split()
    assert 1 < int(pid) < 100 and (foo, bar) == ("bar", "baz")
    assert out[2] == "/tmp" and out[3] == "1"


def test_start_errors(make, tmp_path):
    start = make.launcher.start
    with pytest.raises(StartError, match="network namespace not found"):
        start(make.spec("true", netns_path=str(tmp_path / "nope")))
    with pytest.raises(StartError, match="invalid command"):
        start(make.spec())
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    with pytest.raises(StartError, match="bad bind mount"):
        start(make.spec("true", bind_files={"/nonexistent-dir/hosts": str(hosts)}))
    with pytest.raises(StartError, match="invalid hostname"):
        start(make.spec("true", hostname="a b"))
    with pytest.raises(StartError, match="can't cd"):
        start(make.spec("true", workdir=str(tmp_path / "missing")))


ENGINE = """
import json, sys, time
import dataclasses
from runtime.engine import process as proc
d = json.loads(sys.argv[1])
d["mounts"] = [proc.Mount(**m) for m in d["mounts"]]
spec = proc.ProcessSpec(**d)
print(json.dumps(dataclasses.asdict(proc.Launcher(spec.state_dir + ".launcher").start(spec))), flush=True)
time.sleep(100)
"""


def test_survives_engine_sigkill(make, tmp_path):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # adopt the orphaned monitor to reap it
    try:
        go = tmp_path / "go"
        s = make.spec("sh", "-c", "while [ ! -e /tmp/sig/go ]; do sleep 0.02; done; exit 5",
                      mounts=[proc.Mount(target="/tmp/sig", source=str(tmp_path))])
        engine = subprocess.Popen([sys.executable, "-c", ENGINE, json.dumps(dataclasses.asdict(s), default=sorted)],
                                  stdout=subprocess.PIPE, text=True)
        info = proc.ProcessInfo(**json.loads(engine.stdout.readline()))
        make.started.append(info)
        engine.kill()
        engine.wait()
        engine.stdout.close()
        time.sleep(0.05)
        assert proc.is_running(info)
        assert proc.load(s.state_dir) == info
        go.touch()
        assert wait_exit(s, info)[0] == 5
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def test_exit_watcher(make):
    events: queue.Queue = queue.Queue()
    watcher = ExitWatcher(lambda cid, code: events.put((cid, code)))
    try:
        # Already exited before being watched (engine restart case).
        s0, i0 = make("sh", "-c", "exit 4")
        fd = os.pidfd_open(i0.monitor_pid)
        select.select([fd], [], [], 5)
        os.close(fd)
        watcher.watch(s0.container_id, i0, s0.state_dir)
        assert events.get(timeout=2) == (s0.container_id, 4)

        s1, i1 = make("sleep", "100")
        s2, i2 = make("sh", "-c", "sleep 0.1; exit 9")
        s3, i3 = make("sleep", "100")
        for s, i in ((s1, i1), (s2, i2), (s3, i3)):
            watcher.watch(s.container_id, i, s.state_dir)
        assert events.get(timeout=5) == (s2.container_id, 9)
        watcher.unwatch(s3.container_id)
        proc.stop(i3, timeout=0)
        proc.kill(i1, signal.SIGKILL)
        assert events.get(timeout=5) == (s1.container_id, 137)
        time.sleep(0.05)
        assert events.empty()  # once per container, nothing for the unwatched one
    finally:
        watcher.close()
    with pytest.raises(proc.ProcessError):
        watcher.watch("x", i1, s1.state_dir)


def test_exit_watcher_scales(tmp_path):
    """Many watches (plain processes standing in for monitors), one thread, all fire."""
    n = 300
    state = tmp_path / "state"
    state.mkdir()
    (state / "exit_code").write_text("0\n")
    events: queue.Queue = queue.Queue()
    watcher = ExitWatcher(lambda cid, code: events.put(cid))
    sleeper = subprocess.Popen(["sh", "-c", f"for i in $(seq {n}); do sleep 30 & p=\"$p $!\"; done; echo $p; wait"],
                               stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = [int(p) for p in sleeper.stdout.readline().split()]
        assert len(pids) == n
        for pid in pids:
            ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
            watcher.watch(f"c{pid}", proc.ProcessInfo(pid, pid, 0.0, ticks, ticks), str(state))
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        got = {events.get(timeout=5) for _ in range(n)}
        assert got == {f"c{pid}" for pid in pids}
    finally:
        watcher.close()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sleeper.kill()
        sleeper.wait()
        sleeper.stdout.close()


def test_image_root_changes_survive_a_restart_and_stay_out_of_the_image(make, tmp_path):
    """Two starts on one state dir (stop, then start again): the second sees the first's
    write in the container's upper layer; the image's layer never changes."""
    layer = tmp_path / "layer"
    (layer / "bin").mkdir(parents=True)
    (layer / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    os.chmod(layer / "bin" / "busybox", 0o755)
    os.symlink("busybox", layer / "bin" / "sh")
    state = str(tmp_path / "state")
    s, info = make("/bin/sh", "-c", "echo one > /written; /bin/busybox cat /written", layers=[str(layer)], state_dir=state)
    assert wait_exit(s, info) == (0, "one\n")
    s, info = make("/bin/sh", "-c", "/bin/busybox cat /written", layers=[str(layer)], state_dir=state)
    code, out = wait_exit(s, info)
    assert (code, out.splitlines()[-1]) == (0, "one")
    assert not (layer / "written").exists()
    assert (Path(state) / "upper" / "written").read_text() == "one\n"
    with open("/proc/self/mountinfo") as f:
        assert state not in f.read()  # the overlay was in the monitor's mount namespace only


def test_stdio_handed_in(make, tmp_path):
    """What -i/-t build on: the container's stdin/stdout/stderr are descriptors given in the
    spec (here pipes; a pty's end works alike), not /dev/null and the log."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        s, info = make("sh", "-c", "read line; echo got:$line; echo err >&2", stdio=(in_r, out_w, out_w))
        os.close(in_r)
        os.close(out_w)
        in_r = out_w = -1
        os.write(in_w, b"hello\n")
        os.close(in_w)
        in_w = -1
        data = b""
        while chunk := os.read(out_r, 100):
            data += chunk
        assert data == b"got:hello\nerr\n"
        code, log = wait_exit(s, info)
        assert (code, log) == (0, "")
    finally:
        for fd in (in_r, in_w, out_r, out_w):
            if fd >= 0:
                os.close(fd)


def test_host_image_hides_given_paths_and_is_read_only(make):
    """The engine's root and socket dir (``hide``) are empty in a host-image container even
    outside /tmp; the host's files are read-only; /tmp is the container's own."""
    secret_dir = Path(f"/var/lib/nct-{uuid.uuid4().hex[:8]}")
    secret_dir.mkdir(parents=True)
    try:
        (secret_dir / "netcore.db").write_text("secret")
        s, info = make("sh", "-c", f"ls -A {secret_dir}; echo ==; touch /usr/nct-x 2>&1 | grep -c Read-only; "
                       "echo x > /tmp/mine && cat /tmp/mine", hide=[str(secret_dir)])
        code, out = wait_exit(s, info)
        assert (code, out) == (0, "==\n1\nx\n")
        assert not os.path.exists("/usr/nct-x") and not os.path.exists("/tmp/mine")
    finally:
        for p in secret_dir.iterdir():
            p.unlink()
        secret_dir.rmdir()


def test_no_descriptor_of_the_engine_reaches_the_container(make):
    extra = os.open("/dev/null", os.O_RDONLY)  # inheritable in the engine: must not reach the container
    os.set_inheritable(extra, True)
    try:
        s, info = make("sh", "-c", "ls /proc/$$/fd")
        code, out = wait_exit(s, info)
    finally:
        os.close(extra)
    assert (code, sorted(out.split())) == (0, ["0", "1", "2"])  # not the start pipe, the seccomp program, nor the engine's


def test_terminal_handed_in(make):
    """What -t builds on: a pty's end as stdio with ``tty``: pid 1 leads its own session
    with the terminal as its controlling one (stat's tty_nr is set), and its output
    reaches the other end."""
    import pty

    master, slave = pty.openpty()
    try:
        s, info = make("sh", "-c", "read -r _ _ _ _ _ sid tty _ < /proc/self/stat; [ -t 0 ] && echo tty=$tty sid=$sid",
                       stdio=(slave, slave, slave), tty=True)
        os.close(slave)
        slave = -1
        data = b""
        while b"\n" not in data:
            assert pidfd_wait(master, 5.0), f"no output: {data!r}"
            data += os.read(master, 100)
        fields = dict(kv.split("=") for kv in data.decode().split())
        assert int(fields["tty"]) != 0 and fields["sid"] == "1"  # controlling terminal; pid 1 leads the session
        assert wait_exit(s, info)[0] == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def pidfd_wait(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def test_host_image_has_its_own_run(make, tmp_path):
    """/run holds the host's sockets, and a read-only mount does not stop a connect():
    a host-image container gets an empty /run of its own."""
    sock_dir = Path(f"/run/nct-{uuid.uuid4().hex[:8]}")
    sock_dir.mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(sock_dir / "api.sock"))
        server.listen(1)
        s, info = make("sh", "-c", f"test -e {sock_dir}/api.sock && echo visible || echo hidden")
        code, out = wait_exit(s, info)
        assert (code, out) == (0, "hidden\n")
        assert os.path.exists(sock_dir / "api.sock")  # positive control: it is there on the host
    finally:
        server.close()
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()
