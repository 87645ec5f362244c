"""The routed driver's BIRD, driven over its control socket (netcore.osl.birdctl) and
supervised through netcore.osl.daemons: a real BIRD 2 in a namespace this test makes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


pytestmark = pytest.mark.root

ROOT = str(Path(__file__).resolve().parents[2])

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {root!r})
    from drivers.routed.bird import Bird, render
    from netcore import KernelError

    b = Bird(sys.argv[1])
    out = {{}}
    good = render("192.0.2.1", ["10.9.0.0/26"], [("10.9.0.0/16", 26)], ["192.0.2.1", "192.0.2.2"], b.log)
    try:
        b.apply(good)
        out["pid"] = b.pid()
        out["sessions"] = b.sessions()
        out["rows"] = [r["name"] for r in b.control().protocols()]
        b.apply(render("192.0.2.1", ["10.9.0.0/26"], [("10.9.0.0/16", 26)], ["192.0.2.2", "192.0.2.3"], b.log))
        out["reloaded"] = sorted(b.sessions())
        out["pid_after_reload"] = b.pid()
        try:
            b.apply("protocol bgp broken {{\\n")
        except KernelError as exc:
            out["refused"] = str(exc)
        out["conf_kept"] = open(b.conf).read().count("protocol bgp ")
        out["pid_after_refusal"] = b.pid()
        out["check"] = b.control().configure(b.conf, check=True)
    finally:
        pid = b.pid()
        b.stop()
        out["stopped"] = pid is not None and not os.path.exists(f"/proc/{{pid}}")
        out["files_after_stop"] = sorted(f for f in os.listdir(b.directory) if not f.startswith("bird.log"))
    try:
        b.apply("protocol bgp broken {{\\n")
    except KernelError as exc:
        out["refused_start"] = str(exc)
    out["files_after_refused_start"] = sorted(f for f in os.listdir(b.directory) if not f.startswith("bird.log"))
    out["running_after_refused_start"] = b.running()
    print(json.dumps(out))
    """
)


@pytest.fixture
def bird_ns(name):
    ns = f"nct-{name}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    try:
        yield f"/run/netns/{ns}"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_bird_is_started_reloaded_checked_queried_and_stopped_over_its_socket(bird_ns, nsrun, tmp_path):
    res = nsrun(bird_ns, sys.executable, "-c", SCRIPT.format(root=ROOT), str(tmp_path / "routed"), timeout=60)
    out = json.loads(res.stdout)
    assert out["pid"] and out["pid"] == out["pid_after_reload"] == out["pid_after_refusal"]  # one daemon, reloaded
    assert out["sessions"] == {"192.0.2.2": {"state": "start", "info": out["sessions"]["192.0.2.2"]["info"]}}
    assert out["sessions"]["192.0.2.2"]["info"] in ("Active", "Connect", "Idle", "")
    assert {"device1", "direct1", "kernel1", "blocks", "peer_192_0_2_2"} <= set(out["rows"])
    assert out["reloaded"] == ["192.0.2.2", "192.0.2.3"]  # configure over the socket took the new peers
    assert out["refused"].startswith("bird config: ") and "syntax error" in out["refused"]
    assert "\n" not in out["refused"]
    assert out["conf_kept"] == 2  # the refused config changed nothing
    assert out["check"] == "Configuration OK"
    assert out["stopped"] is True and out["files_after_stop"] == []
    assert out["refused_start"].startswith("bird start: ") and "syntax error" in out["refused_start"]
    assert out["files_after_refused_start"] == [] and out["running_after_refused_start"] is False
