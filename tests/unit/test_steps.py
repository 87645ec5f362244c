"""Named steps with undos, teardown, and the Transaction undo stack (netcore/steps.py)."""

from __future__ import annotations

import os

import pytest

from netcore.errors import InvalidConfig, KernelError, TeardownIncomplete
from netcore.steps import Step, Transaction, run_steps, undo_steps


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def do(self, name: str, fail: BaseException | None = None):
        def _do(plan):
            self.calls.append(f"do {name}")
            if fail is not None:
                raise fail

        return _do

    def undo(self, name: str, fail: BaseException | None = None):
        def _undo(plan):
            self.calls.append(f"undo {name}")
            if fail is not None:
                raise fail

        return _undo


def table(r: Recorder, fail_at: str | None = None, exc: BaseException | None = None):
    return [
        Step(n, r.do(n, exc if n == fail_at else None), r.undo(n))
        for n in ("a", "b", "c", "d")
    ]


def test_all_steps_run_in_order_without_undo():
    r = Recorder()
    run_steps(table(r), plan=None)
    assert r.calls == ["do a", "do b", "do c", "do d"]


def test_failure_undoes_finished_steps_in_reverse_and_reraises():
    r = Recorder()
    err = InvalidConfig("nope")
    with pytest.raises(InvalidConfig) as info:
        run_steps(table(r, "c", err), plan=None)
    assert info.value is err  # a NetcoreError reaches the caller unchanged
    assert r.calls == ["do a", "do b", "do c", "undo b", "undo a"]  # not c's own undo, not d


def test_foreign_exception_becomes_kernel_error_naming_the_step():
    r = Recorder()
    with pytest.raises(KernelError) as info:
        run_steps(table(r, "b", OSError("disk on fire")), plan=None)
    assert "b" == info.value.op
    assert "disk on fire" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert r.calls == ["do a", "do b", "undo a"]


def test_failing_undo_during_rollback_does_not_hide_the_error_or_stop_rollback():
    r = Recorder()
    steps = [
        Step("a", r.do("a"), r.undo("a")),
        Step("b", r.do("b"), r.undo("b", RuntimeError("undo b broke"))),
        Step("c", r.do("c", InvalidConfig("c failed")), r.undo("c")),
    ]
    with pytest.raises(InvalidConfig, match="c failed"):
        run_steps(steps, plan=None)
    assert r.calls == ["do a", "do b", "do c", "undo b", "undo a"]


def test_when_skips_step_and_its_undo():
    r = Recorder()
    plan = {"masq": False}
    steps = [
        Step("a", r.do("a"), r.undo("a")),
        Step("masq", r.do("masq"), r.undo("masq"), when=lambda p: p["masq"]),
        Step("c", r.do("c", InvalidConfig("x")), r.undo("c")),
    ]
    with pytest.raises(InvalidConfig):
        run_steps(steps, plan)
    assert r.calls == ["do a", "do c", "undo a"]
    r.calls.clear()
    plan["masq"] = True
    with pytest.raises(InvalidConfig):
        run_steps(steps, plan)
    assert r.calls == ["do a", "do masq", "do c", "undo masq", "undo a"]


def test_step_without_undo_is_fine_on_rollback():
    r = Recorder()
    steps = [Step("a", r.do("a")), Step("b", r.do("b"), r.undo("b")), Step("c", r.do("c", InvalidConfig("x")))]
    with pytest.raises(InvalidConfig):
        run_steps(steps, plan=None)
    assert r.calls == ["do a", "do b", "do c", "undo b"]


def test_injected_failure_fails_named_step_and_rolls_back(monkeypatch):
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "c")
    r = Recorder()
    with pytest.raises(KernelError) as info:
        run_steps(table(r), plan=None)
    assert info.value.op == "c"
    assert "injected" in str(info.value)
    assert r.calls == ["do a", "do b", "undo b", "undo a"]  # c's do never ran


def test_injected_failure_of_other_name_changes_nothing(monkeypatch):
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "zz")
    r = Recorder()
    run_steps(table(r), plan=None)
    assert r.calls == ["do a", "do b", "do c", "do d"]


def test_injected_failure_on_skipped_step_does_not_fire(monkeypatch):
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "b")
    r = Recorder()
    steps = [Step("a", r.do("a"), r.undo("a")), Step("b", r.do("b"), r.undo("b"), when=lambda p: False)]
    run_steps(steps, plan=None)
    assert r.calls == ["do a"]


def test_undo_steps_runs_every_undo_in_reverse_and_reports_all_errors():
    r = Recorder()
    e1, e2 = RuntimeError("d broke"), KernelError("del", "x", "EBUSY")
    steps = [
        Step("a", r.do("a"), r.undo("a")),
        Step("b", r.do("b"), r.undo("b", e2)),
        Step("c", r.do("c")),  # no undo
        Step("skip", r.do("skip"), r.undo("skip"), when=lambda p: False),
        Step("d", r.do("d"), r.undo("d", e1)),
    ]
    with pytest.raises(TeardownIncomplete) as info:
        undo_steps(steps, plan=None, what="delete network web")
    assert r.calls == ["undo d", "undo b", "undo a"]
    assert info.value.errors == [e1, e2]
    msg = str(info.value)
    assert msg.startswith("delete network web")
    assert "2 cleanup step(s) failed" in msg and "d broke" in msg and "EBUSY" in msg


def test_undo_steps_without_errors_is_silent():
    r = Recorder()
    undo_steps(table(r), plan=None, what="x")
    assert r.calls == ["undo d", "undo c", "undo b", "undo a"]


def test_transaction_undoes_in_reverse_on_exception():
    calls: list[str] = []
    with pytest.raises(InvalidConfig):
        with Transaction("create network web") as tx:
            tx.push("one", lambda: calls.append("one"))
            tx.push("two", lambda: calls.append("two"))
            tx.push("three", lambda: calls.append("three"))
            raise InvalidConfig("boom")
    assert calls == ["three", "two", "one"]


def test_transaction_keeps_undoing_when_an_undo_fails():
    calls: list[str] = []

    def broken():
        calls.append("broken")
        raise RuntimeError("undo failed")

    with pytest.raises(InvalidConfig, match="original"):
        with Transaction("x") as tx:
            tx.push("one", lambda: calls.append("one"))
            tx.push("broken", broken)
            raise InvalidConfig("original")
    assert calls == ["broken", "one"]


def test_transaction_success_runs_no_undo():
    calls: list[str] = []
    with Transaction("x") as tx:
        tx.push("one", lambda: calls.append("one"))
    assert calls == []


def test_transaction_step_injection(monkeypatch):
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "network.store")
    calls: list[str] = []
    with pytest.raises(KernelError, match="network.store"):
        with Transaction("x") as tx:
            tx.push("pool", lambda: calls.append("pool"))
            tx.step("network.driver")  # not the named one: passes
            tx.push("driver", lambda: calls.append("driver"))
            tx.step("network.store")
            calls.append("unreachable")
    assert calls == ["driver", "pool"]


# a process that passes step "a" once, then "b" twice, then "c", printing each time it passes one
_PAUSER = (
    "import sys\n"
    "from netcore.steps import checkpoint, pause_point\n"
    "for name in ('a', 'b', 'b', 'c'):\n"
    "    (pause_point if name == 'b' else checkpoint)(name)\n"
    "    print('passed', name, flush=True)\n"
)


def _pause_at(tmp_path, step: str) -> tuple[str, list[str]]:
    """Run _PAUSER with the pause switch on ``step``; the marker's text and what it passed."""
    import subprocess
    import sys
    import time

    marker = tmp_path / "paused"
    env = {**os.environ, "NETCORE_TEST_PAUSE_STEP": step, "NETCORE_TEST_PAUSE_FILE": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", _PAUSER], env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, "the process ran past its pause point"
            assert time.monotonic() < deadline, "no pause marker"
            time.sleep(0.01)
        assert proc.poll() is None  # it waits there
    finally:
        proc.kill()
    out, _ = proc.communicate()
    return marker.read_text(), out.split("\n")[:-1]


def test_pause_point_stops_before_the_named_step_until_killed(tmp_path):
    text, passed = _pause_at(tmp_path, "c")
    assert text.split()[0] == "c" and text.split()[1].isdigit()
    assert passed == ["passed a", "passed b", "passed b"]  # stopped before c ran


def test_pause_point_counts_to_the_nth_time(tmp_path):
    text, passed = _pause_at(tmp_path, "b@2")
    assert text.startswith("b ")
    assert passed == ["passed a", "passed b"]


def test_pause_point_of_another_name_changes_nothing(monkeypatch):
    monkeypatch.setenv("NETCORE_TEST_PAUSE_STEP", "zz")
    r = Recorder()
    run_steps(table(r), plan=None)
    undo_steps(table(r), plan=None, what="x")
    assert r.calls == ["do a", "do b", "do c", "do d", "undo d", "undo c", "undo b", "undo a"]
