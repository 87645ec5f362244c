"""Test-only pause points of the runtime, at the container steps: the core's switch
(``netcore.steps.pause_point``, ``NETCORE_TEST_PAUSE_STEP=<name>[@N]`` and
``NETCORE_TEST_PAUSE_FILE``), so a crash test can kill -9 the engine there.

The runtime's points are ``run.record`` (the record is in), ``run.sandbox``,
``run.files``, ``run.process`` (the process runs, the record does not say so yet),
``run.running``, ``rm.killed``, ``rm.exited``, ``rm.sandbox``, ``rm.record``.
"""

from __future__ import annotations

from netcore.steps import pause_point as point

__all__ = ["point"]
