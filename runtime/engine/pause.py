"""Test-only pause points: ``NETCORE_TEST_PAUSE_AT=<point>`` stops the engine's request there.

A crash test sets it, waits for the line ``paused at <point>`` in the engine's log,
kills the engine with SIGKILL, and checks that the next engine converges. Points are
named ``<operation>:<what is done>`` (``run:sandbox`` = the run has its sandbox). Unset,
a point costs one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import threading

__all__ = ["point"]

log = logging.getLogger("netcore.pause")


def point(name: str) -> None:
    """Block this thread for good if the test switch names ``name``."""
    if os.environ.get("NETCORE_TEST_PAUSE_AT") == name:
        log.warning("paused at %s", name)
        for h in logging.getLogger().handlers:
            h.flush()
        threading.Event().wait()
