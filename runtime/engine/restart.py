"""Restart policies (``--restart``) and signal names (``kill -s``), with Docker's rules and texts.

Docker's restart manager: a container that exits is started again after a delay that
starts at 100 ms and doubles with each restart up to one minute, back to 100 ms once a run
lasted 10 s. ``no`` never restarts; ``always`` and ``unless-stopped`` always do, and
``on-failure[:N]`` on a non-zero exit code while fewer than N restarts were made (0: no
limit). A container stopped or killed through the API is not restarted. When an engine
starts, ``always`` containers run again even if they were stopped by hand, while
``unless-stopped`` and ``on-failure`` ones do only if they were not.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from netcore import InvalidConfig, backoff

__all__ = ["RestartPolicy", "Backoff", "parse_signal"]

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0  # seconds of running that reset the delay


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"
    max_retries: int = 0  # on-failure only; 0: no limit

    @classmethod
    def parse(cls, text: str) -> "RestartPolicy":
        """``--restart``'s value: ``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``."""
        name, sep, count = (text or "no").partition(":")
        retries = 0
        if sep:
            try:
                retries = int(count)
            except ValueError:
                raise InvalidConfig("maximum retry count must be an integer") from None
        return cls.of({"Name": name, "MaximumRetryCount": retries})

    @classmethod
    def of(cls, api: dict[str, Any] | None) -> "RestartPolicy":
        """From the API's ``RestartPolicy`` object, validated as dockerd does."""
        api = api or {}
        name = api.get("Name") or "no"
        retries = api.get("MaximumRetryCount") or 0
        if name not in POLICIES:
            raise InvalidConfig(f"invalid restart policy '{name}'")
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise InvalidConfig("maximum retry count must be an integer")
        if retries < 0:
            raise InvalidConfig("invalid restart policy: maximum retry count cannot be negative")
        if retries and name != "on-failure":
            raise InvalidConfig(f"invalid restart policy: maximum retry count can only be used with 'on-failure'")
        return cls(name, retries)

    def api(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.max_retries}

    @property
    def restarts(self) -> bool:
        return self.name != "no"

    def should_restart(self, exit_code: int | None, restart_count: int, manually_stopped: bool) -> bool:
        """After an exit while the engine runs."""
        if manually_stopped or self.name == "no":
            return False
        if self.name == "on-failure":
            return exit_code != 0 and (self.max_retries == 0 or restart_count < self.max_retries)
        return True

    def should_start_with_engine(self, exit_code: int | None, restart_count: int, manually_stopped: bool) -> bool:
        """At engine start, for a container that is not running and has run before."""
        if self.name == "always":
            return True
        return self.should_restart(exit_code, restart_count, manually_stopped)


class Backoff:
    """Docker's delay before each restart of one container (netcore's back-off, reset by a long run)."""

    def __init__(self) -> None:
        self._delays = backoff.Backoff(FIRST_DELAY, MAX_DELAY)

    @property
    def delay(self) -> float:
        return self._delays.delay

    def next(self, ran_for: float) -> float:
        if ran_for >= RESET_AFTER:
            self._delays.reset()
        return self._delays.next()


def parse_signal(raw: str | int | None, default: int = signal.SIGKILL) -> int:
    """``KILL``, ``SIGKILL``, ``kill`` or ``9`` -> 9; Docker's ``Invalid signal: X`` otherwise."""
    if raw is None or raw == "":
        return int(default)
    text = str(raw)
    if text.isdigit():
        number = int(text)
        if 0 < number <= signal.SIGRTMAX:
            return number
        raise InvalidConfig(f"Invalid signal: {text}")
    name = text.upper().removeprefix("SIG")
    sig = getattr(signal.Signals, "SIG" + name, None) if name.isalnum() else None
    if sig is None:
        raise InvalidConfig(f"Invalid signal: {text}")
    return int(sig)
