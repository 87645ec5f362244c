"""Interactive containers and the lifecycle: -i/-t through a real pty, create/start/restart/
attach/wait/kill, restart policies (also across an engine kill -9), rm -v $(ps -a -q)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from cli_engine import NETCORE

pytestmark = pytest.mark.root


class Terminal:
    """The CLI on a pseudo-terminal of the test's own, as a user at a terminal runs it: the
    pty is its controlling terminal (setsid -c), so resizing it sends the CLI SIGWINCH."""

    def __init__(self, engine, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        self.proc = subprocess.Popen(["setsid", "-c", *NETCORE, *args], stdin=slave, stdout=slave, stderr=slave,
                                     env={**engine.env, "TERM": "dumb"}, close_fds=True)
        os.close(slave)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def expect(self, needle: bytes, timeout: float = 20.0) -> bytes:
        """Read until ``needle`` shows (a hang fails the test instead of blocking it)."""
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"no {needle!r} on the terminal; it showed {self.seen[-500:]!r}")
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the CLI exited
                raise AssertionError(f"the CLI ended before {needle!r}; it showed {self.seen[-500:]!r}") from None
            self.seen += chunk
        head, _, self.seen = self.seen.partition(needle)
        return head

    def exit_code(self, timeout: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            os.close(self.master)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


@pytest.fixture
def terminals():
    opened: list[Terminal] = []
    yield lambda *a, **kw: opened.append(Terminal(*a, **kw)) or opened[-1]
    for t in opened:
        t.close()


def _until(probe, what: str, timeout: float = 30.0):
    """Poll ``probe`` until it returns something true (a hang fails the test)."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        time.sleep(0.05)
    return value


def _state(engine, name: str) -> dict:
    return engine.json("inspect", name)[0]["State"]


# --------------------------------------------------------------- -i / -t -----

def test_run_it_types_resizes_and_ctrl_c_reaches_the_process(engine, name, terminals):
    t = terminals(engine, "run", "-it", "--rm", "--name", name, "--network", "none", "--", "sh", rows=33, cols=101)
    t.expect(b"# ")  # root's prompt
    t.type(b"echo $((6*7))\r")
    t.expect(b"42\r\n")
    t.type(b"[ -t 0 ] && [ -t 1 ] && echo a-term''inal\r")
    t.expect(b"a-terminal\r\n")
    t.type(b"stty size\r")
    t.expect(b"33 101\r\n")  # the client's size at start
    t.resize(40, 120)  # SIGWINCH to the CLI, which tells the engine
    _until(lambda: (t.type(b"stty size\r"), b"40 120" in t.expect(b"\r\n# "))[1], "the container's terminal follows the resize")
    t.type(b"trap 'echo trapped; exit 7' INT; echo re''ady; while :; do sleep 0.1; done\r")
    t.expect(b"ready\r\n")
    t.type(b"\x03")  # Ctrl-C: the line discipline's SIGINT to the container's foreground process group
    t.expect(b"trapped")
    assert t.exit_code() == 7
    _until(lambda: name not in engine("ps", "-a").stdout, "--rm removed it")


def test_the_books_shell_with_the_current_directory_mounted(engine, name, terminals, tmp_path):
    """The book's `run -it --rm -v $(pwd):/src -w /src IMAGE sh`: a file written inside is on the host."""
    import tarfile

    from dirimages import busybox_rootfs

    with tarfile.open(tmp_path / "bb.tar", "w") as tar:
        tar.add(busybox_rootfs(tmp_path / "bb"), arcname=".")
    engine("image", "import", str(tmp_path / "bb.tar"), f"{name}-bb")
    src = tmp_path / "src"
    src.mkdir()
    t = terminals(engine, "run", "-it", "--rm", "-v", f"{src}:/src", "-w", "/src", "--network", "none", f"{name}-bb", "sh")
    t.expect(b"# ")
    t.type(b"pwd; echo written inside > from-container; exit 5\r")
    t.expect(b"/src\r\n")
    assert t.exit_code() == 5
    assert (src / "from-container").read_text() == "written inside\n"
    assert name not in engine("ps", "-a").stdout  # --rm


def test_start_it_of_a_stopped_container_as_in_the_book(engine, name, terminals):
    t = terminals(engine, "run", "-it", "--name", name, "--network", "none", "--", "sh")
    t.expect(b"# ")
    t.type(b"echo first > /tmp/mark-" + name.encode() + b"; exit 3\r")
    assert t.exit_code() == 3
    assert _state(engine, name)["Status"] == "exited"
    t = terminals(engine, "start", "-it", name)  # the same container, its terminal again
    t.expect(b"# ")
    t.type(b"echo $((2+2))again; exit 4\r")
    t.expect(b"4again")
    assert t.exit_code() == 4
    assert engine.json("inspect", name)[0]["State"]["ExitCode"] == 4


def test_run_i_with_piped_stdin(engine, name):
    res = subprocess.run([*NETCORE, "run", "-i", "--name", name, "--network", "none", "--", "sh", "-c", "tr a-z A-Z; exit 3"],
                         input="hello from a pipe\n", capture_output=True, text=True, env=engine.env, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (3, "HELLO FROM A PIPE\n", "")
    view = engine.json("inspect", name)[0]
    assert view["Config"]["OpenStdin"] and view["Config"]["StdinOnce"] and not view["Config"]["Tty"]
    assert view["State"]["ExitCode"] == 3


def test_it_needs_a_terminal(engine, name):
    res = engine("run", "-it", "--name", name, "--network", "none", "--", "true", check=False)
    assert (res.returncode, res.stderr) == (1, "Error: the input device is not a TTY\n")
    assert engine("ps", "-a", "-q").stdout == ""  # nothing made


def test_sig_proxy_without_a_terminal(engine, name):
    """Without -t the client sends the signals it gets on to the container (Docker's --sig-proxy)."""
    proc = subprocess.Popen([*NETCORE, "run", "-i", "--name", name, "--network", "none", "--", "sh", "-c",
                             "trap 'echo got-term; exit 4' TERM; echo up; while :; do sleep 0.1; done"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=engine.env)
    assert proc.stdout.readline() == b"up\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline() == b"got-term\n"
    assert proc.wait(30) == 4


def test_detached_terminal_survives_an_engine_kill_and_detaches_with_ctrl_p_ctrl_q(engine, name, terminals):
    engine("run", "-dit", "--name", name, "--network", "none", "--", "sh")
    pid = _state(engine, name)["Pid"]
    engine.kill9()
    engine.start()  # the monitor kept the pty master; the new engine takes a copy back
    t = terminals(engine, "attach", name)
    t.type(b"echo $((1+2))x\r")
    t.expect(b"3x\r\n")
    t.type(b"\x10\x11")  # Docker's detach keys
    assert t.exit_code() == 0
    state = _state(engine, name)
    assert state["Running"] and state["Pid"] == pid
    assert "3x" in engine("logs", name).stdout  # the terminal's output is the log
    engine("kill", name)
    assert _state(engine, name)["Status"] == "exited"


# --------------------------------------------------------------- lifecycle --

def test_create_start_attach_wait(engine, name):
    cid = engine("create", "--name", name, "--network", "none", "--", "sh", "-c", "echo run; exit 3").stdout.strip()
    assert len(cid) == 64
    rows = engine("ps", "-a").stdout.splitlines()
    assert any(r.startswith(cid[:12]) and "Created" in r for r in rows)
    assert _state(engine, name)["Status"] == "created"
    res = engine("start", "-a", name, check=False)
    assert (res.returncode, res.stdout) == (3, "run\n")
    res = engine("start", "-a", name, check=False)  # a stopped container's next run: its output only
    assert (res.returncode, res.stdout) == (3, "run\n")
    assert engine("logs", name).stdout == "run\nrun\n"
    assert engine("wait", name).stdout == "3\n"
    res = engine("attach", name, check=False)
    assert (res.returncode, res.stderr) == (1, "Error: You cannot attach to a stopped container, start it first\n")
    res = engine("wait", "nosuch" + name, check=False)
    assert (res.returncode, res.stderr) == (1, f"Error response from daemon: No such container: nosuch{name}\n")
    res = engine("start", "nosuch" + name, check=False)
    assert (res.returncode, res.stderr) == (1, f"Error response from daemon: No such container: nosuch{name}\n")


def test_start_of_a_running_container_is_quiet_and_kill_signals(engine, name):
    engine("run", "-d", "--name", name, "--network", "none", "--", "sh", "-c",
           "trap 'echo usr1; exit 9' USR1; echo up; while :; do sleep 0.1; done")
    pid = _state(engine, name)["Pid"]
    res = engine("start", name)
    assert (res.stdout, res.stderr) == (name + "\n", "") and _state(engine, name)["Pid"] == pid
    res = engine("kill", "-s", "FOO", name, check=False)
    assert (res.returncode, res.stderr) == (1, "Error response from daemon: Invalid signal: FOO\n")
    assert _state(engine, name)["Running"]  # nothing happened
    assert engine("kill", "-s", "SIGUSR1", name).stdout == name + "\n"
    assert engine("wait", name).stdout == "9\n"
    assert engine("logs", name).stdout == "up\nusr1\n"
    res = engine("kill", name, check=False)
    cid = engine.json("inspect", name)[0]["Id"]
    assert (res.returncode, res.stderr) == (1, f"Error response from daemon: Cannot kill container: {name}: Container {cid} is not running\n")


def test_restart_and_kill_default_is_sigkill(engine, name):
    engine("run", "-d", "--name", name, "--network", "none", "--", "sleep", "600")
    before = _state(engine, name)
    assert engine("restart", "-t", "1", name).stdout == name + "\n"
    after = _state(engine, name)
    assert after["Running"] and after["Pid"] != before["Pid"]
    assert engine("kill", name).stdout == name + "\n"
    state = _state(engine, name)
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert engine("restart", name).stdout == name + "\n"  # a stopped container just starts
    assert _state(engine, name)["Running"]


def test_rm_v_of_ps_a_q_as_in_the_book(engine, name):
    for i in range(3):
        engine("run", "--name", f"{name}-{i}", "--network", "none", "--", "true")
    ids = engine("ps", "-a", "-q").stdout.split()
    assert len(ids) == 3
    assert engine("rm", "-v", *ids).stdout.split() == ids
    assert engine("ps", "-a", "-q").stdout == ""


# --------------------------------------------------------------- restart policies

def test_restart_on_failure_counts_and_stops(engine, name):
    engine("run", "-d", "--name", name, "--restart", "on-failure:3", "--network", "none", "--", "sh", "-c", "echo run; exit 2")
    view = _until(lambda: (v := engine.json("inspect", name)[0])["State"]["Status"] == "exited" and v["RestartCount"] == 3 and v,
                  "three restarts, then exited")
    assert view["State"]["ExitCode"] == 2 and view["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert engine("logs", name).stdout == "run\n" * 4
    engine("run", "-d", "--name", name + "-ok", "--restart", "on-failure", "--network", "none", "--", "true")
    _until(lambda: _state(engine, name + "-ok")["Status"] == "exited", "exit 0")
    assert engine.json("inspect", name + "-ok")[0]["RestartCount"] == 0  # success is no failure


def test_restart_always_backs_off_shows_restarting_and_stop_ends_it(engine, name):
    engine("run", "-d", "--name", name, "--restart", "always", "--network", "none", "--", "sh", "-c", "exit 1")
    row = _until(lambda: next((r for r in engine("ps").stdout.splitlines() if "Restarting (1)" in r), None),
                 "ps shows it restarting")
    assert row.endswith(name)
    state = _state(engine, name)
    res = engine("rm", name, check=False)
    assert res.returncode == 1 and "You cannot remove a restarting container" in res.stderr and res.stderr.count("\n") == 1
    engine("stop", name)
    count = engine.json("inspect", name)[0]["RestartCount"]
    assert _state(engine, name)["Status"] == "exited" and count >= 1
    time.sleep(0.5)
    assert engine.json("inspect", name)[0]["RestartCount"] == count  # stopped by hand: no more restarts
    assert state["Restarting"] or state["Running"]


def test_restart_always_comes_back_after_an_engine_kill_and_restart(engine, name):
    engine("run", "-d", "--name", name, "--restart", "always", "--network", "none", "--", "sleep", "600")
    engine("run", "-d", "--name", name + "-us", "--restart", "unless-stopped", "--network", "none", "--", "sleep", "600")
    engine("stop", "-t", "0", name + "-us")
    pid = _state(engine, name)["Pid"]
    engine.kill9()
    os.kill(pid, signal.SIGKILL)  # the container dies while no engine is up
    _until(lambda: not os.path.exists(f"/proc/{pid}"), "the container is gone")
    engine.start()
    view = _until(lambda: (v := engine.json("inspect", name)[0])["State"]["Status"] == "running" and v, "always: back")
    assert view["State"]["Pid"] != pid and view["RestartCount"] == 1
    assert _state(engine, name + "-us")["Status"] == "exited"  # unless-stopped and stopped by hand: stays so
    engine("stop", "-t", "0", name)
    engine.kill9()
    engine.start()
    _until(lambda: _state(engine, name)["Status"] == "running", "always comes back with the engine even after a stop")


def test_restart_and_rm_conflict_and_bad_policies(engine, name):
    res = engine("run", "--rm", "--restart", "always", "--", "true", check=False)
    assert (res.returncode, res.stderr) == (125, "Error: Conflicting options: --restart and --rm\n")
    res = engine("run", "--restart", "sometimes", "--name", name, "--", "true", check=False)
    assert (res.returncode, res.stderr) == (125, "Error response from daemon: invalid restart policy 'sometimes'\n")
    res = engine("create", "--restart", "always:2", "--name", name, "--", "true", check=False)
    assert res.returncode == 125 and "can only be used with 'on-failure'" in res.stderr
    assert engine("ps", "-a", "-q").stdout == ""


def test_a_failed_start_a_leaves_no_session_or_waiter_in_the_engine(engine, name):
    """``start -a`` attaches and registers for the exit before it starts: when the start fails
    (its network is gone), both must end, not hold a connection until the container runs."""
    engine("network", "create", name)
    engine("create", "--name", name, "--network", name, "--", "echo", "hi")
    engine("network", "rm", name)
    sockets = lambda: sum(os.readlink(f"/proc/{engine.proc.pid}/fd/{fd}").startswith("socket:")  # noqa: E731
                          for fd in os.listdir(f"/proc/{engine.proc.pid}/fd"))
    res = engine("start", "-a", name, check=False)  # the first one may add the engine's worker threads' sockets
    assert (res.returncode, res.stderr) == (1, f"Error response from daemon: network {name} not found\n")
    before = sockets()
    for _ in range(4):
        assert engine("start", "-a", name, check=False).returncode == 1
    _until(lambda: sockets() <= before, "the sessions and waiters of failed starts are gone")
    assert _state(engine, name)["Status"] == "created"
