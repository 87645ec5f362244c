"""kill -9 at every step boundary of ``run`` and ``rm`` (issue 12, items 3 and 5, container half).

The engine pauses at a named point (``NETCORE_TEST_PAUSE_STEP``: the runtime's points
in runtime.engine.pause, and the core's step boundaries inside the sandbox's setup
and teardown where the core has them), the test kills it with SIGKILL there, starts the next engine on the same root and
checks that store, processes and kernel agree: no record left ``Created`` by a run
that never finished, no container process that no record tracks, no sandbox netns
without a running container, and the address the container had is free again.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from cli_engine import NETCORE, Engine
from netcore.names import engine_tag
from runtime.engine import monitors

pytestmark = pytest.mark.root

RUN_POINTS = ["run.record", "run.sandbox", "run.files", "run.process", "run.running"]
RM_POINTS = ["rm.killed", "rm.exited", "rm.sandbox", "rm.record"]
try:  # the core's step boundaries a run and an rm cross (netcore.steps), where the core has pause points
    from netcore.steps import pause_point as _core_pause  # noqa: F401

    RUN_POINTS[2:2] = ["sandbox.netns", "sandbox.store", "endpoint.ipam", "endpoint.create", "endpoint.join",
                       "endpoint.configure", "endpoint.store", "endpoint.gateway"]
    RM_POINTS[2:2] = ["endpoint.release", "endpoint.forget", "sandbox.netns.delete", "sandbox.forget"]
except ImportError:
    pass


def wait_for_pause(eng: Engine, point: str, client: subprocess.Popen) -> None:
    marker = Path(eng.env["NETCORE_TEST_PAUSE_FILE"])
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().split()[0] == point):
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, f"the engine never paused at {point}"
        time.sleep(0.05)


def crash_at(eng: Engine, point: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``netcore ARGS`` until the engine pauses at ``point``, SIGKILL the engine, start the next one."""
    client = subprocess.Popen([*NETCORE, *args], env=eng.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_pause(eng, point, client)
    eng.kill9()
    out, err = client.communicate(timeout=30)
    eng.env.pop("NETCORE_TEST_PAUSE_STEP")
    eng.start()
    return subprocess.CompletedProcess(client.args, client.returncode, out, err)


def sandboxes(eng: Engine) -> set[str]:
    prefix = f"nc-{engine_tag(eng.root)}-"
    return {n for n in os.listdir("/run/netns") if n.startswith(prefix)} if os.path.isdir("/run/netns") else set()


def containers(eng: Engine) -> dict[str, dict]:
    from runtime.api.client import Client

    rows = Client(f"unix://{eng.socket}", autostart=False).request("GET", "/containers/json", query={"all": "1"})
    return {r["Names"]: r for r in rows}


def assert_consistent(eng: Engine) -> None:
    rows = containers(eng)
    assert all(r["State"] in ("running", "exited") for r in rows.values()), rows  # nothing stuck in Created
    running = {r["ID"] for r in rows.values() if r["State"] == "running"}
    live = monitors.find(os.path.join(eng.root, "containers"))
    assert set(live) <= running, f"processes no running record tracks: {set(live) - running}"
    assert len(sandboxes(eng)) == len(running), (sandboxes(eng), running)


@pytest.fixture
def crashable(tmp_path, request):
    env = {"NETCORE_TEST_PAUSE_STEP": request.param, "NETCORE_TEST_PAUSE_FILE": str(tmp_path / "paused")}
    eng = Engine(tmp_path, env=env).start()
    yield eng, request.param
    eng.env.pop("NETCORE_TEST_PAUSE_STEP", None)
    eng.stop()


def _net(eng: Engine, name: str, subnet: str) -> str:
    """A network with a fixed address for the container: reusable only if it was released."""
    eng("network", "create", "--subnet", subnet, name)
    return str(subnet.rsplit(".", 1)[0]) + ".77"


@pytest.mark.parametrize("crashable", RUN_POINTS, indirect=True)
def test_kill9_during_run(crashable, name, subnet):
    eng, point = crashable
    ip = _net(eng, name, subnet)
    res = crash_at(eng, point, "run", "-d", "--name", name, "--network", name, "--ip", ip, "--", "sleep", "600")
    if point != "run.running":
        assert res.returncode != 0 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert_consistent(eng)
    rows = containers(eng)
    if point == "run.running":  # the run had finished: the container is adopted
        assert rows[name]["State"] == "running"
        eng("rm", "-f", name)
    else:  # the run had not: it is rolled back, process included
        assert name not in rows
    assert not monitors.find(os.path.join(eng.root, "containers"))
    assert sandboxes(eng) == set()
    eng("run", "-d", "--name", name + "b", "--network", name, "--ip", ip, "--", "sleep", "600")  # the address is free
    eng("rm", "-f", name + "b")
    eng("network", "rm", name)


@pytest.mark.parametrize("crashable", RM_POINTS, indirect=True)
def test_kill9_during_rm(crashable, name, subnet):
    eng, point = crashable
    ip = _net(eng, name, subnet)
    eng("run", "-d", "--name", name, "--network", name, "--ip", ip, "--", "sleep", "600")
    crash_at(eng, point, "rm", "-f", name)
    assert_consistent(eng)
    rows = containers(eng)
    assert name not in rows or rows[name]["State"] == "exited"
    assert not monitors.find(os.path.join(eng.root, "containers"))
    if name in rows:
        eng("rm", name)
    assert name not in containers(eng)
    assert sandboxes(eng) == set()
    eng("run", "-d", "--name", name + "b", "--network", name, "--ip", ip, "--", "sleep", "600")
    eng("rm", "-f", name + "b")
    eng("network", "rm", name)


def test_a_process_no_record_names_is_stopped_at_start(tmp_path, name):
    """A monitor of this root whose container has no record at all (the store lost it):
    the next engine stops it rather than leave it running out of every command's reach."""
    eng = Engine(tmp_path).start()
    try:
        cid = eng("run", "-d", "--name", name, "--", "sleep", "600").stdout.strip()
        found = monitors.find(os.path.join(eng.root, "containers"))
        assert list(found) == [cid]
        mon = found[cid][0]
        assert mon.pid1 is not None
        eng.kill9()
        import sqlite3

        with sqlite3.connect(os.path.join(eng.root, "netcore.db")) as db:  # the store forgets the container
            assert db.execute("DELETE FROM objects WHERE kind = 'container' AND id = ?", (cid,)).rowcount == 1
        eng.start()
        assert not monitors.find(os.path.join(eng.root, "containers"))
        assert not Path(f"/proc/{mon.pid1}").exists() or b"sleep" not in Path(f"/proc/{mon.pid1}/cmdline").read_bytes()
        assert sandboxes(eng) == set()
    finally:
        eng.stop()


def test_system_reset_stops_a_process_no_record_names(tmp_path):
    """A stray container process of this root (started here behind the engine's back):
    ``system reset -f`` stops it with everything else."""
    from runtime.engine import process

    eng = Engine(tmp_path).start()
    cid = "d" * 64
    spec = process.ProcessSpec(container_id=cid, argv=["sleep", "600"], env={}, workdir=None, hostname=None,
                               netns_path=None, bind_files={}, state_dir=os.path.join(eng.root, "containers", cid))
    info = process.Launcher(str(tmp_path / "launcher")).start(spec)
    try:
        assert list(monitors.find(os.path.join(eng.root, "containers"))) == [cid]
        eng.stop()  # system reset -f
        deadline = time.monotonic() + 5
        while process.is_running(info) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not process.is_running(info)
    finally:
        if process.is_running(info):
            process.kill(info)


def test_monitors_are_found_by_the_launch_convention(tmp_path):
    """``monitors.find`` reads what ``launch.prefix`` writes: a change to one breaks this."""
    from runtime.engine import process

    spec = process.ProcessSpec(container_id="c" * 64, argv=["sleep", "600"], env={}, workdir=None, hostname=None,
                               netns_path=None, bind_files={}, state_dir=str(tmp_path / "containers" / ("c" * 64)))
    info = process.Launcher(str(tmp_path / "launcher")).start(spec)
    try:
        found = monitors.find(str(tmp_path / "containers"))
        assert list(found) == ["c" * 64], (found, info)
        assert found["c" * 64][0].pid == info.monitor_pid, (found, info)
        assert found["c" * 64][0].pid1 == info.pid, (found, info)
        assert monitors.stop(found["c" * 64][0]), (found, info)
        deadline = time.monotonic() + 5
        while process.is_running(info) and time.monotonic() < deadline:  # pid 1 is reaped by its parent
            time.sleep(0.01)
        assert not process.is_running(info)
    finally:
        if process.is_running(info):
            process.kill(info)
