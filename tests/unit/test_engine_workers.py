"""The engine's request threads: reused one after another, never too few for the requests at once."""

from __future__ import annotations

import threading
import time

from runtime.engine.daemon import Workers


def wait_idle(workers: Workers, n: int) -> None:
    deadline = time.monotonic() + 5
    while workers.idle_threads < n:
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_requests_one_after_another_share_one_thread():
    workers = Workers()
    seen: list[int] = []
    for _ in range(20):
        done = threading.Event()
        workers.submit(lambda: (seen.append(threading.get_ident()), done.set()))
        assert done.wait(5)
        wait_idle(workers, 1)  # the thread is back to waiting
    assert workers.threads == 1
    assert len(set(seen)) == 1


def test_blocking_requests_each_get_a_thread_and_the_threads_are_reused():
    workers = Workers()
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(10)

    for _ in range(12):  # e.g. twelve `logs -f`: none may wait for another to end
        workers.submit(hold)
    for _ in range(12):
        assert started.acquire(timeout=5)
    assert workers.threads == 12
    release.set()
    wait_idle(workers, 12)
    for _ in range(12):  # as many at once again: no new thread
        workers.submit(hold)
    for _ in range(12):
        assert started.acquire(timeout=5)
    assert workers.threads == 12


def test_a_failing_request_keeps_its_thread_serving():
    workers = Workers()
    workers.submit(lambda: 1 / 0)
    done = threading.Event()
    wait_idle(workers, 1)
    workers.submit(done.set)
    assert done.wait(5)
    assert workers.threads == 1
