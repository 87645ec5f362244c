"""The engine holds descriptors per container; it must keep working past FD_SETSIZE (1024).

libnftables waits on its netlink socket with ``select()``, and glibc aborts the whole
process when such a socket gets a descriptor >= 1024. The per-container descriptors
(the exit watcher's pidfds, the embedded DNS's listeners) therefore live above that
range, and the engine lifts its soft open-files limit so that they can.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import uuid

import pytest

from runtime.engine import process as proc

pytestmark = pytest.mark.root  # skipped by tests/conftest.py unless root


@pytest.fixture
def netns():
    name = f"nct-{uuid.uuid4().hex[:8]}"  # the suite's leak check covers nct-*
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield f"/run/netns/{name}"
    subprocess.run(["ip", "netns", "del", name], check=True)


def test_nftables_works_with_many_sandboxes_worth_of_descriptors(netns, tmp_path):
    """600 sandboxes' listeners and pidfds held, then an nft batch: no abort, rules applied.

    In a child interpreter: were it to abort, the test fails instead of the suite."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4096:
        pytest.skip("needs a hard open-files limit of 4096 or more")
    sleeper = subprocess.Popen(["sleep", "60"])
    script = textwrap.dedent(f"""
        import os
        from netcore.dns.server import open_listeners
        from netcore.osl.nft import Firewall
        from runtime.engine import process as proc

        proc.raise_fd_limit()
        held = [s for _ in range(600) for s in open_listeners({netns!r}, port=0)]
        ticks = int(open("/proc/{sleeper.pid}/stat").read().rsplit(")", 1)[1].split()[19])
        info = proc.ProcessInfo({sleeper.pid}, {sleeper.pid}, 0.0, ticks, ticks)
        from runtime.engine.exitwatch import ExitWatcher
        watcher = ExitWatcher(lambda cid, code: None)
        for i in range(600):
            watcher.watch(f"c{{i}}", info, {str(tmp_path)!r})
        assert len(os.listdir("/proc/self/fd")) > 1800
        fw = Firewall("nct-fds", netns_path={netns!r})
        fw.apply([{{"add": {{"table": {{"family": "inet", "name": "nct-fds"}}}}}}])
        print("tables", [o["table"]["name"] for o in fw.list() if "table" in o])
        fw.close()
        watcher.close()
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert out.returncode == 0, out.stderr[-2000:]
    assert "nct-fds" in out.stdout


def test_containers_keep_the_engines_original_soft_limit(tmp_path, monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 1024:
        pytest.skip("needs a hard open-files limit above 1024")
    monkeypatch.delenv("NETCORE_NOFILE", raising=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert proc.raise_fd_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        spec = proc.ProcessSpec(container_id="c-nofile", argv=["sh", "-c", "ulimit -S -n; ulimit -H -n"], env={},
                                workdir=None, hostname=None, netns_path=None, bind_files={},
                                state_dir=str(tmp_path / "c"))
        info = proc.Launcher(str(tmp_path / "launcher")).start(spec)
        proc.stop(info, timeout=5)
        with open(proc.log_path(spec.state_dir)) as f:
            assert f.read().split() == ["1024", str(hard)]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_requests_leave_no_descriptors_behind(engine, subnet):
    """API calls that touch the kernel leave the engine's descriptor count where it was
    (served on a new thread each, every call used to leave a netlink socket behind)."""
    from runtime.api.client import Client

    client = Client(f"unix://{engine.socket}", root=engine.root, autostart=False)
    body = {"Name": "nctfd", "Driver": "bridge", "IPAM": {"Config": [{"Subnet": subnet}]}}

    def fds() -> int:
        return len(os.listdir(f"/proc/{engine.proc.pid}/fd"))

    for _ in range(3):  # warm up: the first calls open what the engine keeps
        client.request("POST", "/networks/create", body)
        client.request("DELETE", "/networks/nctfd")
    before = fds()
    for _ in range(40):
        client.request("POST", "/networks/create", body)
        client.request("DELETE", "/networks/nctfd")
    assert fds() - before < 5
