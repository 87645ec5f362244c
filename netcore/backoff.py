"""One back-off policy for every retry loop: exponential delays with a ceiling.

Used by the etcd store (commit replays, watch reconnects), the cluster join and
rejoin loops, the routed driver's late watch and the runtime's restart manager, so a
retry schedule is read and tuned in one place. The one loop that does not use it is the
CLI client's connect retry (``runtime/api/client.py``): importing ``netcore`` would cost
every command's start-up more than the loop's five lines.
"""

from __future__ import annotations

import threading

__all__ = ["Backoff"]


class Backoff:
    """Delays ``first``, ``first*factor``, ... capped at ``maximum``; ``reset()`` starts over.

    ``wait(stop)`` sleeps the next delay and returns early (True) when ``stop`` is set,
    so a loop that retries can still be shut down at once.
    """

    def __init__(self, first: float, maximum: float, factor: float = 2.0) -> None:
        if first <= 0 or maximum < first or factor < 1:
            raise ValueError(f"back-off needs 0 < first <= maximum and factor >= 1, not {first}, {maximum}, {factor}")
        self.first, self.maximum, self.factor = first, maximum, factor
        self.delay = 0.0  # the last delay handed out; 0 before the first

    def next(self) -> float:
        """The next delay (and remember it)."""
        self.delay = self.first if self.delay == 0 else min(self.delay * self.factor, self.maximum)
        return self.delay

    def reset(self) -> None:
        """The next delay is ``first`` again (after a success)."""
        self.delay = 0.0

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Sleep the next delay; True if ``stop`` was set before it ran out."""
        delay = self.next()
        if stop is None:
            threading.Event().wait(delay)
            return False
        return stop.wait(delay)
