"""The engine's healthcheck loop, with probes run as real host commands (the engine execs them in containers)."""

from __future__ import annotations

import time

import pytest

from netcore import InvalidConfig
from runtime.engine.health import HealthConfig, HealthMonitor

MS = 1_000_000


def wait_for(monitor: HealthMonitor, cid: str, pred, limit: float = 20.0) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = monitor.state(cid)
        if pred(state):
            return state
        time.sleep(0.01)
    raise AssertionError(f"health never reached the expected state: {monitor.state(cid)}")


@pytest.fixture
def monitor():
    m = HealthMonitor(lambda cid, argv: (list(argv), ()))  # the "container" is the host here
    yield m
    m.close()


def test_from_api():
    cfg = HealthConfig.from_api({"Test": ["CMD-SHELL", "exit 0"], "Interval": 2000 * MS, "Retries": 5})
    assert cfg == HealthConfig(("/bin/sh", "-c", "exit 0"), 2.0, 30.0, 5, 0.0)
    assert HealthConfig.from_api({"Test": ["CMD", "true", "x"]}).argv == ("true", "x")
    assert HealthConfig.from_api({"Test": ["NONE"]}) is None and HealthConfig.from_api(None) is None
    for bad, msg in (({"Test": ["true"]}, "Healthcheck.Test must be"), ({"Test": "true"}, "list of strings"),
                     ({"Test": ["CMD", "true"], "Interval": -1}, "Healthcheck.Interval"),
                     ({"Test": ["CMD", "true"], "Retries": 0.5}, "Healthcheck.Retries")):
        with pytest.raises(InvalidConfig, match=msg):
            HealthConfig.from_api(bad)


def test_healthy_then_unhealthy_after_retries(monitor, tmp_path):
    flag = tmp_path / "ok"
    flag.touch()
    monitor.watch("c1", HealthConfig(("sh", "-c", f"test -e {flag} && echo fine"), interval=0.02, retries=3))
    assert monitor.state("c1")["Status"] == "starting"
    state = wait_for(monitor, "c1", lambda s: s["Status"] == "healthy")
    assert state["Log"][-1]["ExitCode"] == 0 and state["Log"][-1]["Output"] == "fine\n"
    flag.unlink()
    state = wait_for(monitor, "c1", lambda s: s["Status"] == "unhealthy")
    assert state["FailingStreak"] >= 3 and state["Log"][-1]["ExitCode"] == 1
    assert len(state["Log"]) <= 5
    flag.touch()
    assert wait_for(monitor, "c1", lambda s: s["Status"] == "healthy")["FailingStreak"] == 0


def test_timeout_kills_the_probe(monitor, tmp_path):
    pidfile = tmp_path / "pid"
    monitor.watch("c2", HealthConfig(("sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"), interval=0.02, timeout=0.2, retries=1))
    state = wait_for(monitor, "c2", lambda s: s["Status"] == "unhealthy")
    assert state["Log"][-1]["ExitCode"] == -1 and "exceeded timeout" in state["Log"][-1]["Output"]
    monitor.unwatch("c2")
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the probe's whole process group was killed, its sleep too
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the timed-out probe's child still runs")


def test_failures_in_the_start_period_do_not_count(monitor):
    monitor.watch("c3", HealthConfig(("false",), interval=0.02, retries=1, start_period=3600))
    state = wait_for(monitor, "c3", lambda s: s and len(s["Log"]) >= 3)
    assert state["Status"] == "starting" and state["FailingStreak"] == 0
    monitor.forget("c3")
    assert monitor.state("c3") is None


def test_the_run_request_checks_labels_and_healthcheck_types():
    from runtime.api.schemas import ContainerRun, Invalid, parse_body

    ok = parse_body(ContainerRun, b'{"Labels": {"a": "b"}, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000}}')
    assert ok["Labels"] == {"a": "b"} and ok["Healthcheck"]["Interval"] == 1000000
    for raw, where in ((b'{"Healthcheck": {"Interval": "1s"}}', "Healthcheck.Interval"),
                       (b'{"Healthcheck": {"Test": "true"}}', "Healthcheck.Test"),
                       (b'{"Labels": {"a": 1}}', "Labels.a")):
        with pytest.raises(Invalid, match=where):
            parse_body(ContainerRun, raw)


def test_descriptors_handed_to_a_probe_reach_it_and_are_closed(tmp_path):
    import os

    opened: list[int] = []

    def exec_argv(cid, argv):
        fd = os.open(tmp_path, os.O_RDONLY)
        os.set_inheritable(fd, True)
        opened.append(fd)
        return ["sh", "-c", f"test -e /proc/self/fd/{fd}"], (fd,)

    m = HealthMonitor(exec_argv)
    try:
        m.watch("c4", HealthConfig(("x",), interval=0.02, retries=1))
        wait_for(m, "c4", lambda s: s["Status"] == "healthy" and len(s["Log"]) >= 2)
    finally:
        m.close()
    time.sleep(0.1)
    for fd in set(opened):
        with pytest.raises(OSError):
            os.fstat(fd)  # closed once its probe started
