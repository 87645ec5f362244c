"""A pytest plugin for driver authors: an engine in a test netns, a leak checker, failure injection.

Loaded by the ``pytest11`` entry point of the netcore distribution (so any project
with netcore installed has it; ``-p no:netcore`` turns it off), or explicitly with
``-p netcore.testing``. Loading it costs an import of this module only: no fixture
runs, no engine starts and nothing on the host changes unless a test asks for one
of its fixtures. They need root (real namespaces):

- ``netcore_netns``: a fresh network namespace ``nct-<random>`` with ``lo`` up; its path.
- ``netcore_engine``: a ``netcore daemon`` with its own root dir and socket, running in
  ``netcore_netns`` and started in test mode (``NETCORE_TEST_MODE=1``). Drive it with
  the CLI: ``netcore_engine("network", "create", "-d", "macvlan", "n1")``. Per command,
  ``fail_step="macvlan.link"`` makes the step of that name fail in that request only,
  and ``steps=True`` returns the steps the command crossed as well. ``walk(...)`` fails
  every step of a command in turn and checks that each failure left nothing behind.
  At teardown the engine is reset and the leak checker must find nothing it made left.
- ``netcore_leaks``: ``netcore_leaks(netns_path, netns_prefix="nc-")`` returns a
  ``LeakChecker`` that snapshots links, routes and nftables tables of that netns (None:
  the test process's own) and the named netns with that prefix; at teardown the test fails
  if any object is new. Objects named with the ``nct`` prefix are the test's own and
  are not counted.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["TestEngine", "LeakChecker", "in_netns", "netcore_netns", "netcore_engine", "netcore_leaks"]

NETNS_DIR = "/run/netns"
TEST_PREFIX = "nct"  # objects a test makes itself: never counted as leaks


def in_netns(netns_path: str | None, *argv: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the netns at ``netns_path`` (None: here)."""
    wrap = ["nsenter", f"--net={netns_path}"] if netns_path else []
    return subprocess.run([*wrap, *argv], capture_output=True, text=True, check=check, timeout=timeout)


# ============================================================ leak checker ====


class LeakChecker:
    """Kernel objects of one netns (links, routes of every table, nftables tables) and the
    named netns whose names start with ``netns_prefix``: ``snapshot()`` now, ``leaks(before)``:
    what is new since ``before``, by kind."""

    def __init__(self, netns_path: str | None = None, netns_prefix: str = "nc-") -> None:
        self.netns_path = netns_path
        self.netns_prefix = netns_prefix

    def _json(self, *argv: str) -> Any:
        res = in_netns(self.netns_path, *argv)
        return json.loads(res.stdout) if res.returncode == 0 and res.stdout.strip() else []

    def snapshot(self) -> dict[str, set[str]]:
        links = {
            f"{l['ifname']} ({l.get('linkinfo', {}).get('info_kind', 'device')}{', ' + l['ifalias'] if l.get('ifalias') else ''})"
            for l in self._json("ip", "-d", "-j", "link", "show")
            if not l["ifname"].startswith(TEST_PREFIX)
        }
        routes = {
            " ".join(f"{k} {r[k]}" for k in ("type", "dst", "gateway", "dev", "table", "protocol") if r.get(k))
            for family in ("-4", "-6")
            for r in self._json("ip", "-j", family, "route", "show", "table", "all")
            if not str(r.get("dev", "")).startswith(TEST_PREFIX) and r.get("table") != "local"
        }
        tables = self._json("nft", "-j", "list", "tables")
        nft = {f"{t['table']['family']} {t['table']['name']}" for t in (tables or {}).get("nftables", []) if "table" in t} if tables else set()
        try:
            named = {n for n in os.listdir(NETNS_DIR) if n.startswith(self.netns_prefix)}
        except FileNotFoundError:
            named = set()
        return {"links": links, "routes": routes, "nft tables": nft, "netns": named}

    def leaks(self, before: dict[str, set[str]]) -> dict[str, set[str]]:
        after = self.snapshot()
        return {kind: new for kind in after if (new := after[kind] - before.get(kind, set()))}

    def check(self, before: dict[str, set[str]], what: str = "the test") -> None:
        left = self.leaks(before)
        if left:
            lines = "; ".join(f"{kind}: {', '.join(sorted(objs))}" for kind, objs in sorted(left.items()))
            raise AssertionError(f"{what} left kernel objects behind: {lines}")


@pytest.fixture
def netcore_leaks() -> Iterator[Callable[..., LeakChecker]]:
    """A factory of leak checkers; each one checked at teardown against its first snapshot."""
    armed: list[tuple[LeakChecker, dict[str, set[str]]]] = []

    def make(netns_path: str | None = None, netns_prefix: str = "nc-") -> LeakChecker:
        checker = LeakChecker(netns_path, netns_prefix)
        armed.append((checker, checker.snapshot()))
        return checker

    yield make
    for checker, before in armed:
        checker.check(before)


# ============================================================ netns ===========


@pytest.fixture
def netcore_netns() -> Iterator[str]:
    """A fresh netns with ``lo`` up, removed at teardown (with whatever is left in it)."""
    if os.geteuid() != 0:
        pytest.skip("netcore_netns needs root (real namespaces)")
    name = f"{TEST_PREFIX}-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    path = f"{NETNS_DIR}/{name}"
    try:
        in_netns(path, "ip", "link", "set", "lo", "up", check=True)
        yield path
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


# ============================================================ engine ==========


class TestEngine:
    """A ``netcore daemon`` in test mode inside a netns, with its own root dir and socket."""

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, workdir: Path, netns_path: str | None, env: dict[str, str] | None = None) -> None:
        self.netns_path = netns_path
        self.root = str(workdir / "root")
        self.socket = str(workdir / "netcore.sock")
        self.log = workdir / "engine.log"
        self.env = {
            **os.environ, "NETCORE_HOST": f"unix://{self.socket}", "NETCORE_ROOT": self.root,
            "NETCORE_TEST_MODE": "1", **(env or {}),
        }
        for var in ("NETCORE_TEST_FAIL_STEP", "NETCORE_TEST_REQUEST_FAIL_STEP", "NETCORE_TEST_REQUEST_STEP_LOG"):
            self.env.pop(var, None)  # a switch of the test process must not reach every command
        self.proc: subprocess.Popen | None = None
        self._steps = workdir / "steps.log"

    @property
    def tag(self) -> str:
        from netcore.names import engine_tag

        return engine_tag(self.root)

    def start(self) -> "TestEngine":
        os.makedirs(self.root, exist_ok=True)
        wrap = ["nsenter", f"--net={self.netns_path}"] if self.netns_path else []
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*wrap, sys.executable, "-m", "runtime.cli", "daemon", "--root", self.root, "--socket", self.socket,
                 "--log-level", "debug"],
                env=self.env, stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("netcore engine did not start: " + self.log.read_text()[-2000:])
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(self.socket)
                return True
            except OSError:
                return False

    def __call__(self, *args: str, check: bool = True, fail_step: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``netcore ARGS`` against this engine; ``fail_step``: fail that step in this command only."""
        env = dict(self.env)
        if fail_step:
            env["NETCORE_TEST_REQUEST_FAIL_STEP"] = fail_step
        res = subprocess.run([sys.executable, "-m", "runtime.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"netcore {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def steps(self, *args: str) -> list[str]:
        """Run ``netcore ARGS`` (it must succeed) and return the failable steps it crossed, in order."""
        self._steps.write_text("")
        env_before = self.env.get("NETCORE_TEST_REQUEST_STEP_LOG")
        self.env["NETCORE_TEST_REQUEST_STEP_LOG"] = str(self._steps)
        try:
            self(*args)
        finally:
            if env_before is None:
                self.env.pop("NETCORE_TEST_REQUEST_STEP_LOG")
        return list(dict.fromkeys(self._steps.read_text().split()))

    def sandbox(self, container: str) -> str:
        """The path of a running container's netns."""
        return self.json("inspect", container)[0]["NetworkSettings"]["SandboxKey"]

    def checker(self) -> LeakChecker:
        """Everything this engine makes: in its netns, and its sandboxes' netns (``nc-<tag>-``)."""
        return LeakChecker(self.netns_path, f"nc-{self.tag}-")

    def store_rows(self) -> list[tuple[str, str, str]]:
        """Every record of the engine's local store (IPAM included)."""
        import sqlite3

        db = sqlite3.connect(f"file:{self.root}/netcore.db?mode=ro", uri=True)
        try:
            return sorted(db.execute("SELECT kind, id, data FROM objects"))
        finally:
            db.close()

    def walk(self, command: Sequence[str], undo: Sequence[str] | Callable[[], Any], prefix: str = "") -> list[str]:
        """Fail each step ``command`` crosses (those starting with ``prefix``), one request each:
        the command must exit non-zero with one line naming the injected failure, and leave the
        kernel and the store as they were; then it must still work (undone with ``undo``).
        Returns the steps walked."""
        def undo_it() -> None:
            undo() if callable(undo) else self(*undo)

        steps = [s for s in self.steps(*command) if s.startswith(prefix)]
        undo_it()
        checker = self.checker()
        for step in steps:
            before, rows = checker.snapshot(), self.store_rows()
            res = self(*command, check=False, fail_step=step)
            assert res.returncode != 0 and "injected" in res.stderr, (step, res.stdout, res.stderr)
            assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, (step, res.stderr)
            checker.check(before, f"a failure at step {step}")
            assert self.store_rows() == rows, f"a failure at step {step} changed the store"
        self(*command)
        undo_it()
        return steps

    def restart(self, kill: bool = False) -> "TestEngine":
        """Stop the engine process (SIGTERM, or SIGKILL with ``kill``) and start it again on the
        same root: containers outlive it, and the new engine re-adopts them (``restore_network``)."""
        assert self.proc is not None, "the engine is not running"
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        return self.start()

    def stop(self) -> None:
        """Remove every container and network of the engine (``system reset`` stops it too)."""
        if self.proc is None:
            return
        self("system", "reset", "-f", check=False)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def netcore_engine(netcore_netns: str, tmp_path: Path) -> Iterator[TestEngine]:
    """An engine in ``netcore_netns``; at teardown it is reset and must have left nothing."""
    checker = LeakChecker(netcore_netns, "nc-")
    before = checker.snapshot()
    eng = TestEngine(tmp_path / "netcore", netcore_netns)
    (tmp_path / "netcore").mkdir(exist_ok=True)
    eng.start()
    checker.netns_prefix = f"nc-{eng.tag}-"
    before["netns"] = set()
    try:
        yield eng
    finally:
        eng.stop()
    checker.check(before, "the engine")
