"""Kernel work as named steps with undos, and the undo stack behind every transaction.

A failing step undoes the finished ones in reverse; teardown runs every undo and
reports what failed together.

Test-only switches name a step (``checkpoint``: every step of ``run_steps`` and
``Transaction.step``; ``pause_point`` alone: the steps of teardowns, which never fail
on purpose):

- ``NETCORE_TEST_FAIL_STEP=<name>`` makes the step of that name fail, so tests can
  prove the rollback.
- ``NETCORE_TEST_STEP_LOG=<file>`` appends the name of every failable step reached to
  the file, so a test can walk every step a command crosses (whatever the drivers declare).
- ``NETCORE_TEST_PAUSE_STEP=<name>[@N]`` makes the process stop just before the N-th
  time (default the first) it reaches the step of that name: it writes
  ``<name> <pid>`` to the file ``NETCORE_TEST_PAUSE_FILE`` (if set) and sleeps until
  killed, so a test can ``kill -9`` it at exactly that step boundary and check what
  the next engine makes of the half-done work.

The first two also exist per request, so that one engine serves a test many
commands, each failing at a different step: ``request_switches(fail_step=...,
step_log=...)`` arms them for the calling thread's current context only. The API
server arms them from the ``X-Netcore-Test-Fail-Step`` / ``X-Netcore-Test-Step-Log``
headers of a request, and only in an engine started with ``NETCORE_TEST_MODE=1``
(the CLI sends them when ``NETCORE_TEST_REQUEST_FAIL_STEP`` /
``NETCORE_TEST_REQUEST_STEP_LOG`` are set); ``netcore.testing`` builds on them.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from netcore.errors import KernelError, NetcoreError, TeardownIncomplete

__all__ = [
    "Step", "run_steps", "undo_steps", "Transaction", "check_injected_failure", "pause_point", "checkpoint",
    "request_switches", "TEST_MODE",
]

log = logging.getLogger("netcore.steps")
PAUSE_STEP, PAUSE_FILE = "NETCORE_TEST_PAUSE_STEP", "NETCORE_TEST_PAUSE_FILE"
STEP_LOG = "NETCORE_TEST_STEP_LOG"
_reached: dict[str, int] = {}  # pause point name -> times reached (only counted while one is armed)
_reached_lock = threading.Lock()
TEST_MODE = "NETCORE_TEST_MODE"  # an engine started with it set honours the per-request switches
_request: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "netcore_test_request", default=(None, None)
)  # (fail step, step log path) of the request being served


@contextmanager
def request_switches(fail_step: str | None = None, step_log: str | None = None) -> Iterator[None]:
    """Arm the failure switch and the step log for the body only (one API request)."""
    token = _request.set((fail_step or None, step_log or None))
    try:
        yield
    finally:
        _request.reset(token)


def check_injected_failure(name: str) -> None:
    """Raise if a test switch (the engine's, or the request's) names this step."""
    if os.environ.get("NETCORE_TEST_FAIL_STEP") == name:
        raise KernelError(name, "(injected)", "failure injected by NETCORE_TEST_FAIL_STEP")
    if _request.get()[0] == name:
        raise KernelError(name, "(injected)", "failure injected by the request's X-Netcore-Test-Fail-Step")


def pause_point(name: str) -> None:
    """Stop here for good (until killed) if ``NETCORE_TEST_PAUSE_STEP`` names this step."""
    wanted = os.environ.get(PAUSE_STEP)
    if not wanted:
        return
    step, _, nth = wanted.partition("@")
    if step != name:
        return
    with _reached_lock:
        _reached[name] = count = _reached.get(name, 0) + 1
    if count != (int(nth) if nth.isdigit() else 1):
        return
    marker = os.environ.get(PAUSE_FILE)
    log.warning("paused at step %s (NETCORE_TEST_PAUSE_STEP), pid %d", name, os.getpid())
    if marker:
        tmp = f"{marker}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{name} {os.getpid()}\n")
        os.replace(tmp, marker)  # appears whole: the test reads it as soon as it exists
    while True:
        time.sleep(3600)


def checkpoint(name: str) -> None:
    """A step boundary: the test switches may pause or fail the process here."""
    for log_path in (os.environ.get(STEP_LOG), _request.get()[1]):
        if log_path:  # a test learns which steps a command crosses, to walk each of them
            with open(log_path, "a") as f:
                f.write(name + "\n")
    pause_point(name)
    check_injected_failure(name)


@dataclass(frozen=True)
class Step:
    """``do(plan)`` then, on rollback or teardown, ``undo(plan)``; skipped when ``when(plan)`` is false."""

    name: str
    do: Callable[[Any], None]
    undo: Callable[[Any], None] | None = None
    when: Callable[[Any], bool] | None = None


def _applies(step: Step, plan: Any) -> bool:
    return step.when is None or bool(step.when(plan))


def run_steps(steps: Iterable[Step], plan: Any) -> None:
    """Run each step; on failure undo the finished ones in reverse and re-raise."""
    done: list[Step] = []
    for step in steps:
        if not _applies(step, plan):
            continue
        try:
            checkpoint(step.name)
            log.debug("step %s", step.name)
            step.do(plan)
        except NetcoreError:
            _undo_quietly(done, plan)
            raise
        except Exception as exc:
            _undo_quietly(done, plan)
            raise KernelError(step.name, "failed", str(exc)) from exc
        done.append(step)


def undo_steps(steps: Iterable[Step], plan: Any, what: str) -> None:
    """Best-effort teardown: run every undo in reverse, then report all failures at once."""
    errors: list[BaseException] = []
    for step in reversed(list(steps)):
        if step.undo is None or not _applies(step, plan):
            continue
        pause_point(f"{step.name}.undo")
        try:
            step.undo(plan)
        except Exception as exc:  # keep going: teardown never stops early
            errors.append(exc)
    if errors:
        raise TeardownIncomplete(what, errors)


def _undo_quietly(done: list[Step], plan: Any) -> None:
    for step in reversed(done):
        if step.undo is None:
            continue
        try:
            step.undo(plan)
        except Exception:
            log.exception("rollback of %s failed", step.name)


class Transaction:
    """An undo stack: ``push`` an undo after each change; leaving with an error runs them in reverse."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._undo: list[tuple[str, Callable[[], Any]]] = []

    def push(self, name: str, undo: Callable[[], Any]) -> None:
        self._undo.append((name, undo))

    def step(self, name: str) -> None:
        """Mark a point in the chain where an injected failure or a test pause may strike."""
        checkpoint(name)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            return
        for name, undo in reversed(self._undo):
            try:
                undo()
            except Exception:
                log.exception("%s: rollback of %s failed", self.what, name)
