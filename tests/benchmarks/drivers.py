"""The macvlan driver against the bridge driver, and hook tracing's cost, side by side in one run.

In-process (the core's public Controller API, no CLI, HTTP or engine in the numbers), in a
netns of its own (``nct-bench-<random>``, removed at the end), interleaved ``--reps`` times:

- ``connect`` + ``disconnect`` of one live sandbox on a bridge network and on a macvlan
  network (its own parent): one endpoint's whole life, per driver;
- the same on macvlan with ``NETCORE_TRACE_HOOKS=1`` (a second controller on its own root,
  the trace written to a file): what tracing costs an author per endpoint.

    .venv/bin/python -m tests.benchmarks.drivers [--reps 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from tests.benchmarks.core import Stats, ratio


def _worker(reps: int, warmup: int = 10) -> dict[str, Any]:
    from netcore import names
    from netcore.controller import on_host

    tmp = tempfile.mkdtemp(prefix="ncbench-")
    logging.getLogger("netcore.hooks").addHandler(logging.FileHandler(os.path.join(tmp, "trace.log")))
    logging.getLogger("netcore.hooks").propagate = False
    plain = on_host(os.path.join(tmp, "plain"))
    os.environ["NETCORE_TRACE_HOOKS"] = "1"
    traced = on_host(os.path.join(tmp, "traced"))
    del os.environ["NETCORE_TRACE_HOOKS"]
    series: dict[str, list[float]] = {"bridge": [], "macvlan": [], "macvlan traced": []}
    sandboxes = []
    try:
        for ctl in (plain, traced):
            ctl.start()
        plain.create_network("nbb", driver="bridge", subnet="10.207.1.0/24")
        plain.create_network("nbm", driver="macvlan", subnet="10.207.2.0/24")
        traced.create_network("nbt", driver="macvlan", subnet="10.207.3.0/24")
        cases = [("bridge", plain, "nbb"), ("macvlan", plain, "nbm"), ("macvlan traced", traced, "nbt")]
        for label, ctl, net in cases:
            sid = names.new_id()
            ctl.setup_sandbox(sid, f"b{len(sandboxes)}", [])
            sandboxes.append((ctl, sid))
        for i in range(warmup + reps):
            for (label, ctl, net), (_, sid) in zip(cases[i % 3:] + cases[: i % 3], sandboxes[i % 3:] + sandboxes[: i % 3]):
                t0 = time.perf_counter()
                ctl.connect(net, sid)
                ctl.disconnect(net, sid)
                if i >= warmup:
                    series[label].append((time.perf_counter() - t0) * 1000)
        trace_lines = sum(1 for _ in open(os.path.join(tmp, "trace.log")))
    finally:
        for ctl in (plain, traced):
            ctl.reset()
            ctl.close()
        shutil.rmtree(tmp, ignore_errors=True)
    stats = {k: Stats.of(v) for k, v in series.items()}
    return {
        "reps": reps,
        "connect+disconnect ms": {k: s.as_dict() for k, s in stats.items() if s},
        "macvlan / bridge": ratio(stats["macvlan"].median, stats["bridge"].median),
        "traced / plain (macvlan)": ratio(stats["macvlan traced"].median, stats["macvlan"].median),
        "trace lines": trace_lines,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.reps)))
        return
    ns = f"nct-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        out = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-m", "tests.benchmarks.drivers",
                              "--worker", "--reps", str(args.reps)], check=True, capture_output=True, text=True)
        print(json.dumps(json.loads(out.stdout.splitlines()[-1]), indent=2))
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
