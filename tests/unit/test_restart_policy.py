"""Restart policies, Docker's back-off and signal names (runtime/engine/restart.py)."""

from __future__ import annotations

import signal

import pytest

from netcore import InvalidConfig
from runtime.engine.restart import Backoff, RestartPolicy, parse_signal


@pytest.mark.parametrize(
    "text, name, retries",
    [("no", "no", 0), ("", "no", 0), ("always", "always", 0), ("unless-stopped", "unless-stopped", 0),
     ("on-failure", "on-failure", 0), ("on-failure:3", "on-failure", 3)],
)
def test_parse(text, name, retries):
    assert RestartPolicy.parse(text) == RestartPolicy(name, retries)


@pytest.mark.parametrize(
    "text, message",
    [("sometimes", "invalid restart policy 'sometimes'"),
     ("on-failure:x", "maximum retry count must be an integer"),
     ("on-failure:-1", "maximum retry count cannot be negative"),
     ("always:3", "maximum retry count can only be used with 'on-failure'")],
)
def test_parse_refuses_with_dockers_texts(text, message):
    with pytest.raises(InvalidConfig, match=message):
        RestartPolicy.parse(text)


def test_on_failure_counts_and_stops():
    p = RestartPolicy("on-failure", 2)
    assert p.should_restart(1, 0, False) and p.should_restart(1, 1, False)
    assert not p.should_restart(1, 2, False)  # two restarts made: done
    assert not p.should_restart(0, 0, False)  # success is no failure
    assert RestartPolicy("on-failure", 0).should_restart(1, 1000, False)  # 0: no limit


def test_manual_stop_wins_while_the_engine_runs_but_always_comes_back_with_the_engine():
    for name in ("always", "unless-stopped", "on-failure"):
        assert not RestartPolicy(name).should_restart(1, 0, manually_stopped=True)
    assert RestartPolicy("always").should_start_with_engine(0, 0, manually_stopped=True)
    assert not RestartPolicy("unless-stopped").should_start_with_engine(0, 0, manually_stopped=True)
    assert RestartPolicy("unless-stopped").should_start_with_engine(0, 0, manually_stopped=False)
    assert not RestartPolicy("no").should_start_with_engine(1, 0, manually_stopped=False)


def test_backoff_doubles_to_a_minute_and_resets_after_ten_seconds_of_running():
    b = Backoff()
    delays = [b.next(0.5) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert b.next(10.0) == 0.1


@pytest.mark.parametrize("raw, number", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("sigusr1", signal.SIGUSR1),
                                          ("TERM", 15), (None, 9), ("", 9)])
def test_parse_signal(raw, number):
    assert parse_signal(raw) == number


@pytest.mark.parametrize("raw", ["FOO", "0", "999", "SIG", "-1", "KILL;"])
def test_parse_signal_refuses(raw):
    with pytest.raises(InvalidConfig, match=f"^Invalid signal: {raw}$"):
        parse_signal(raw)
