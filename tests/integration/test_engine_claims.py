"""What an engine claims (issue 12, items 6 and 9): its root and socket alone, a private
root, a mount namespace its containers survive in, and clients that start it only when
they should, and only once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cli_engine import NETCORE, Engine

pytestmark = pytest.mark.root


def daemon(root: str, sock: str, wrap: tuple[str, ...] = (), timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*wrap, *NETCORE, "daemon", "--root", root, "--socket", sock],
                          capture_output=True, text=True, timeout=timeout)


def one_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_a_second_engine_on_the_same_root_exits_with_one_line(engine, tmp_path):
    other_sock = str(tmp_path / "other.sock")
    line = one_line(daemon(engine.root, other_sock))
    assert f"(pid {engine.proc.pid}) is already running on root" in line
    assert not os.path.exists(other_sock)
    assert engine("network", "ls", "-q").returncode == 0  # the first one is untouched


def test_a_second_engine_on_the_same_socket_exits_and_leaves_no_root(engine, tmp_path):
    other_root = str(tmp_path / "other-root")
    line = one_line(daemon(other_root, engine.socket))
    assert f"(pid {engine.proc.pid}) is already running on socket" in line
    assert not os.path.exists(other_root)
    assert engine("network", "ls", "-q").returncode == 0


def test_the_lock_goes_with_a_killed_engine(tmp_path):
    eng = Engine(tmp_path).start()
    eng.kill9()
    eng.start()  # no stale lock: the kernel dropped it with the process
    eng.stop()


def test_the_root_is_private_and_old_modes_are_fixed_at_start(tmp_path):
    eng = Engine(tmp_path).start()
    try:
        eng("run", "--rm", "-e", "DB_PASSWORD=hunter2", "--", "true")
        eng.kill9()
        root = Path(eng.root)
        os.chmod(root, 0o755)  # as an older engine left it
        for f in root.iterdir():
            if f.is_file():
                os.chmod(f, 0o644)
        eng.start()
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        files = [f for f in root.iterdir() if f.is_file()]
        assert any(f.name == "netcore.db" for f in files)
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", str(root / "netcore.db")],
                             capture_output=True)
        assert res.returncode != 0 and b"Permission denied" in res.stderr
    finally:
        eng.stop()


def test_a_new_root_is_private_from_the_first_start(tmp_path):
    eng = Engine(tmp_path).start()
    try:
        root = Path(eng.root)
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        for name in ("netcore.db", "netcore.db-wal", "engine.lock"):
            if (root / name).exists():
                assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name
    finally:
        eng.stop()


def test_an_engine_under_ip_netns_exec_refuses_to_start(tmp_path):
    ns = f"nct-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        root, sock = str(tmp_path / "root"), str(tmp_path / "e.sock")
        line = one_line(daemon(root, sock, wrap=("ip", "netns", "exec", ns)))
        assert "nsenter --net" in line
        assert not os.path.exists(root) and not os.path.exists(sock)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def test_propagation_is_read_from_mountinfo():
    from runtime.engine.rootdir import _propagation

    info = ("45 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "68 48 254:0 /run/netns /run/netns rw,relatime master:1 - ext4 /dev/vda rw\n")
    assert _propagation(info, "/run/netns") == "master:1"
    assert _propagation(info.splitlines()[0], "/run/netns") == "shared:1"
    assert _propagation(info, "/other") is None


# ------------------------------------------------------------------ autostart --


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NETCORE_")}
    return subprocess.run([*NETCORE, *args], env={**base, **env}, capture_output=True, text=True, timeout=60)


def engines_on(root: str) -> list[int]:
    """Pids of engine processes whose command line names ``root``."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                argv = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"daemon" in argv and root.encode() in argv:
                out.append(int(p.name))
    return out


def test_no_engine_is_started_for_a_socket_named_with_netcore_host(tmp_path):
    sock, root = str(tmp_path / "named.sock"), str(tmp_path / "root")
    for env in ({"NETCORE_HOST": f"unix://{sock}", "NETCORE_ROOT": root}, {"NETCORE_ROOT": root}):
        args = ("network", "ls") if "NETCORE_HOST" in env else ("-H", f"unix://{sock}", "network", "ls")
        line = one_line(cli(*args, env=env))
        assert "is the engine running?" in line and f"netcore daemon --socket {sock}" in line
    assert not os.path.exists(sock)
    assert engines_on(root) == []


def test_netcore_no_autostart_turns_it_off_for_the_default_socket(tmp_path):
    from runtime.api.client import DEFAULT_SOCKET

    if os.path.exists(DEFAULT_SOCKET):
        pytest.skip("an engine owns the default socket on this host")
    root = str(tmp_path / "root")
    line = one_line(cli("network", "ls", env={"NETCORE_NO_AUTOSTART": "1", "NETCORE_ROOT": root}))
    assert "NETCORE_NO_AUTOSTART" in line and "netcore daemon" in line
    assert not os.path.exists(DEFAULT_SOCKET)
    assert engines_on(root) == []


def test_may_autostart_only_for_the_default_socket(monkeypatch):
    from runtime.api import autostart
    from runtime.api.client import DEFAULT_SOCKET

    monkeypatch.delenv("NETCORE_NO_AUTOSTART", raising=False)
    assert autostart.may_autostart(DEFAULT_SOCKET)
    assert not autostart.may_autostart("/tmp/x.sock")
    assert not autostart.may_autostart(DEFAULT_SOCKET, allowed=False)
    monkeypatch.setenv("NETCORE_NO_AUTOSTART", "1")
    assert not autostart.may_autostart(DEFAULT_SOCKET)


def test_eight_clients_at_once_start_one_engine(tmp_path):
    """The start path the CLI takes for the default socket, pointed at a test socket."""
    sock, root = str(tmp_path / "e.sock"), str(tmp_path / "root")
    code = f"from runtime.api.autostart import start_once; start_once({sock!r}, {root!r}); print('up')"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    try:
        outs = [p.communicate(timeout=90) for p in procs]
        assert all(p.returncode == 0 and out.strip() == "up" for p, (out, _) in zip(procs, outs)), outs
        time.sleep(0.5)  # a second engine, had one been started, would still be starting or failing now
        assert len(engines_on(root)) == 1
        log = (Path(root) / "engine.log").read_text()
        assert "already running" not in log  # none was even tried
    finally:
        pids = engines_on(root)
        cli("system", "reset", "-f", env={"NETCORE_HOST": f"unix://{sock}", "NETCORE_ROOT": root})
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
