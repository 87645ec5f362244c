"""Test-only pause points of the runtime: the core's switch, at the container steps.

``NETCORE_TEST_PAUSE_STEP=<name>[@N]`` stops the engine just before the N-th time
(default the first) it reaches the point of that name, writes ``<name> <pid>`` to
the file ``NETCORE_TEST_PAUSE_FILE`` (if set) and sleeps until killed: a crash test
kills it there with SIGKILL and checks that the next engine converges. The runtime's
points are ``run.record`` (the record is in), ``run.sandbox``, ``run.files``,
``run.process`` (the process runs, the record does not say so yet), ``run.running``,
``rm.killed``, ``rm.exited``, ``rm.sandbox``, ``rm.record``.

It is the same switch as the core's step pause points (``netcore.steps.pause_point``)
and uses it where the core has it; until then this module holds the same logic.
"""

from __future__ import annotations

import logging
import os
import threading
import time

__all__ = ["point"]

log = logging.getLogger("netcore.steps")
PAUSE_STEP, PAUSE_FILE = "NETCORE_TEST_PAUSE_STEP", "NETCORE_TEST_PAUSE_FILE"
_reached: dict[str, int] = {}
_reached_lock = threading.Lock()


def _point(name: str) -> None:
    """Stop here for good (until killed) if ``NETCORE_TEST_PAUSE_STEP`` names this point."""
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
        os.replace(tmp, marker)
    while True:
        time.sleep(3600)


try:
    from netcore.steps import pause_point as point  # type: ignore[attr-defined]
except ImportError:
    point = _point
