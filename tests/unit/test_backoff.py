"""netcore.backoff: the delays every retry loop in netcore and the runtime waits."""

from __future__ import annotations

import threading

import pytest

from netcore.backoff import Backoff


def test_doubles_from_first_to_the_ceiling_and_starts_over_after_reset():
    b = Backoff(0.5, 10.0)
    assert [b.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    b.reset()
    assert b.next() == 0.5


def test_the_etcd_commit_schedule():
    b = Backoff(0.001, 0.05)
    assert [round(b.next(), 6) for _ in range(8)] == [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05]


def test_wait_returns_at_once_when_told_to_stop():
    stop = threading.Event()
    stop.set()
    b = Backoff(3600.0, 3600.0)
    assert b.wait(stop) is True  # an hour's delay, cut short: the loop can shut down
    assert b.delay == 3600.0


@pytest.mark.parametrize("args", [(0, 1), (2, 1), (1, 2, 0.5)])
def test_refuses_a_schedule_that_never_waits_or_shrinks(args):
    with pytest.raises(ValueError):
        Backoff(*args)
