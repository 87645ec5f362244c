"""Container healthchecks, run by the engine as Docker runs them.

A container created with a ``Healthcheck`` (the API's shape: ``Test`` as ``["CMD", ...]``
or ``["CMD-SHELL", "..."]``, durations in nanoseconds) gets one thread here while it
runs. Every ``Interval`` the test runs as an exec in the container's namespaces; it
fails if it exits non-zero or outlives ``Timeout`` (then its process group is killed).
``Retries`` failures in a row make the container ``unhealthy``, one success makes it
``healthy``; failures within ``StartPeriod`` of the start do not count while it is
still ``starting``. ``state()`` is inspect's ``State.Health``: Status, FailingStreak and
the last five results. The state lives in the engine's memory: a restarted engine
re-adopts a running container as ``starting`` and probes it again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from netcore import InvalidConfig

__all__ = ["HealthConfig", "HealthMonitor", "STARTING", "HEALTHY", "UNHEALTHY"]

log = logging.getLogger("netcore.health")
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
KEEP_RESULTS = 5  # Docker's: the last five probes
MAX_OUTPUT = 4096  # bytes of a probe's output kept, as Docker
NS = 1_000_000_000
DEFAULT_INTERVAL = DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3


@dataclass(frozen=True)
class HealthConfig:
    argv: tuple[str, ...]  # the command run in the container
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0

    @classmethod
    def from_api(cls, body: Any) -> HealthConfig | None:
        """The API's ``Healthcheck``; None for none (absent, or ``Test: ["NONE"]``). Bad input: one line."""
        if not body:
            return None
        if not isinstance(body, dict):
            raise InvalidConfig("Healthcheck must be an object")
        test = body.get("Test") or []
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise InvalidConfig("Healthcheck.Test must be a list of strings")
        if test[:1] == ["NONE"]:
            return None
        if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
            raise InvalidConfig('Healthcheck.Test must be ["CMD", command, args...] or ["CMD-SHELL", command]')
        argv = tuple(test[1:]) if test[0] == "CMD" else ("/bin/sh", "-c", " ".join(test[1:]))

        def seconds(key: str, default: float) -> float:
            value = body.get(key) or 0
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidConfig(f"Healthcheck.{key} must be a non-negative number of nanoseconds")
            if value and value < NS // 1000:
                raise InvalidConfig(f"Healthcheck.{key} must be at least 1ms")
            return value / NS if value else default

        retries = body.get("Retries") or DEFAULT_RETRIES
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
            raise InvalidConfig("Healthcheck.Retries must be a positive integer")
        return cls(argv, seconds("Interval", DEFAULT_INTERVAL), seconds("Timeout", DEFAULT_TIMEOUT), retries,
                   seconds("StartPeriod", 0.0))


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Check:
    """One container's probe loop and its state (guarded by the monitor's lock)."""

    def __init__(self, cid: str, config: HealthConfig) -> None:
        self.cid = cid
        self.config = config
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.state: dict[str, Any] = {"Status": STARTING, "FailingStreak": 0, "Log": []}


ExecArgv = Callable[[str, Sequence[str]], "tuple[list[str], tuple[int, ...]]"]


class HealthMonitor:
    """Runs the healthchecks of running containers. ``exec_argv(cid, argv)`` gives the host
    command that runs ``argv`` inside the container (the launcher's exec) and the descriptors
    it must inherit; the monitor closes those once the probe is done."""

    def __init__(self, exec_argv: ExecArgv, on_change: Callable[[str, str], None] | None = None) -> None:
        self._exec_argv = exec_argv
        self._on_change = on_change  # (cid, new status): the engine's ``health_status`` event
        self._lock = threading.Lock()
        self._checks: dict[str, _Check] = {}

    def watch(self, cid: str, config: HealthConfig) -> None:
        """Start probing ``cid`` (status ``starting``); a previous loop for it ends."""
        check = _Check(cid, config)
        with self._lock:
            old = self._checks.get(cid)
            if old is not None:
                old.stop.set()
            self._checks[cid] = check
        threading.Thread(target=self._loop, args=(check,), name=f"health-{cid[:12]}", daemon=True).start()

    def unwatch(self, cid: str) -> None:
        """Stop probing (the container exited); its last state stays for inspect."""
        with self._lock:
            check = self._checks.get(cid)
        if check is not None:
            check.stop.set()

    def forget(self, cid: str) -> None:
        """The container is gone: drop its state too."""
        self.unwatch(cid)
        with self._lock:
            self._checks.pop(cid, None)

    def state(self, cid: str) -> dict[str, Any] | None:
        """inspect's ``State.Health`` (a copy), or None if ``cid`` has no healthcheck."""
        with self._lock:
            check = self._checks.get(cid)
            if check is None:
                return None
            return {**check.state, "Log": [dict(r) for r in check.state["Log"]]}

    def close(self) -> None:
        with self._lock:
            for check in self._checks.values():
                check.stop.set()

    # ------------------------------------------------------------------------

    def _loop(self, check: _Check) -> None:
        while not check.stop.wait(check.config.interval):
            try:
                result = self._probe(check)
            except Exception as exc:  # the container is gone between two probes, or exec failed
                if check.stop.is_set():
                    return
                result = {"Start": _stamp(), "End": _stamp(), "ExitCode": -1, "Output": str(exc)}
            if check.stop.is_set():
                return
            before = check.state["Status"]
            self._record(check, result)
            after = check.state["Status"]
            if after != before and self._on_change is not None and not check.stop.is_set():
                self._on_change(check.cid, after)

    def _probe(self, check: _Check) -> dict[str, Any]:
        start = _stamp()
        argv, fds = self._exec_argv(check.cid, list(check.config.argv))
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        try:
            out, _ = proc.communicate(timeout=check.config.timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the probe's whole group, inside the container too
            except ProcessLookupError:
                pass
            proc.communicate()
            out, code = f"Health check exceeded timeout ({check.config.timeout:g}s)".encode(), -1
        return {"Start": start, "End": _stamp(), "ExitCode": code, "Output": out[:MAX_OUTPUT].decode(errors="replace")}

    def _record(self, check: _Check, result: dict[str, Any]) -> None:
        cfg = check.config
        with self._lock:
            state = check.state
            state["Log"] = (state["Log"] + [result])[-KEEP_RESULTS:]
            if result["ExitCode"] == 0:
                state["Status"], state["FailingStreak"] = HEALTHY, 0
                return
            in_start_period = time.monotonic() - check.started < cfg.start_period
            if in_start_period and state["Status"] == STARTING:
                return
            state["FailingStreak"] += 1
            if state["FailingStreak"] >= cfg.retries:
                if state["Status"] != UNHEALTHY:
                    log.info("container %s is unhealthy: %s", check.cid[:12], result["Output"].strip()[:200])
                state["Status"] = UNHEALTHY
