"""Helpers for CLI-level integration tests: a private engine, free subnets, netns exec."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/reserve.py
from reserve import free_port, free_subnet  # noqa: E402,F401  (the suite's one place for ports and subnets)

NETCORE = [sys.executable, "-m", "runtime.cli"]


class Engine:
    """A ``netcore daemon`` with its own root dir and socket, driven through the CLI."""

    def __init__(
        self, tmp: Path, env: dict[str, str] | None = None, daemon_args: tuple[str, ...] = (), netns: str | None = None,
        daemon_cmd: list[str] | None = None,
    ) -> None:
        self.daemon_args = daemon_args
        self.daemon_cmd = daemon_cmd or NETCORE  # what runs ``daemon ...`` (tests may wrap the engine)
        self.netns = netns  # run the engine inside this netns (a test "host"); the CLI stays outside
        self.root = str(tmp / "root")
        self.socket = str(tmp / "netcore.sock")
        self.env = {**os.environ, "NETCORE_HOST": f"unix://{self.socket}", "NETCORE_ROOT": self.root, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Engine":
        log = open(str(Path(self.root).parent / "engine.log"), "ab")
        os.makedirs(self.root, exist_ok=True)
        wrap = ["nsenter", f"--net={self.netns}"] if self.netns else []
        self.proc = subprocess.Popen(
            [*wrap, *self.daemon_cmd, "daemon", "--root", self.root, "--socket", self.socket, "--log-level", "debug", *self.daemon_args],
            env=self.env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not self._answers():  # a socket file alone may be a killed engine's
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("engine did not start: " + Path(self.root).parent.joinpath("engine.log").read_text()[-2000:])
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(self.socket)
                return True
            except OSError:
                return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run([*NETCORE, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"netcore {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def json(self, *args: str) -> object:
        return json.loads(self(*args).stdout)

    def stop(self) -> None:
        """Remove everything the engine made (system reset stops it), then make sure it is gone."""
        if self.proc is None:
            self.start()
        self("system", "reset", "-f", check=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def netns_exec(path: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True, **kw)


def host_links() -> set[str]:
    return {l["ifname"] for l in json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)}


def engine_links(engine: "Engine") -> set[str]:
    """Links carrying this engine's alias (other tests may be making links at the same time)."""
    from netcore.names import engine_tag

    prefix = f"netcore:{engine_tag(engine.root)}:"
    out = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)
    return {l["ifname"] for l in out if l.get("ifalias", "").startswith(prefix)}
