"""Overlay propagation: from a container's join on host A to its reachability from host B.

Uses the multi-host lab of the tests (tests/integration/multihost.py: hosts are netns
on an underlay bridge, one etcd, one engine per host). For each join: ``run -d`` on
host A returns (the join is done there), then host B's overlay namespace is polled
every 2 ms until a new FDB entry appears (B programs it, with the neighbour entry,
from its etcd watch: from then on B reaches the container); then, untimed, one ping
from a container on B to the new one proves the path. Reported: median, p90, min and
max over the joins, with 5 hosts.

    .venv/bin/python -m tests.benchmarks.overlay [--hosts 5] [--joins 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from multihost import Lab  # noqa: E402

from netcore import names  # noqa: E402


def _fdb(host: Any, net_id: str) -> set[str]:
    ns = f"nc-{names.engine_tag(host.engine.root)}-ov-{net_id[:10]}"
    out = subprocess.run(["ip", "netns", "exec", ns, "bridge", "-j", "fdb", "show", "dev", "vxlan0"], capture_output=True, text=True)
    return {e["mac"] for e in json.loads(out.stdout or "[]") if e.get("dst")} if out.returncode == 0 else set()


def measure(hosts: int = 5, joins: int = 20) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ncb-overlay-") as tmp:
        lab = Lab(Path(tmp), hosts)
        try:
            a, b = lab.hosts[0], lab.hosts[-1]
            net = f"ncb{os.urandom(2).hex()}"
            net_id = a("network", "create", "-d", "overlay", net).stdout.strip()
            for h in lab.hosts:
                lab.wait(lambda: net in h("network", "ls").stdout)
            b("run", "-d", "--name", f"{net}-probe", "--network", net, "--", "sleep", "3600")
            samples = []
            for i in range(joins):
                before = _fdb(b, net_id)
                a("run", "-d", "--name", f"{net}-{i}", "--network", net, "--", "sleep", "3600")
                t0 = time.perf_counter()
                while _fdb(b, net_id) == before:
                    if time.perf_counter() - t0 > 10:
                        raise RuntimeError(f"join {i} never reached host B")
                    time.sleep(0.002)
                samples.append((time.perf_counter() - t0) * 1000)
                ip = a.json("inspect", f"{net}-{i}")[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
                if b("exec", f"{net}-probe", "ping", "-c", "1", "-W", "1", ip, check=False).returncode != 0:
                    raise RuntimeError(f"join {i}: programmed on host B but no ping answer")
            return {"hosts": hosts, "joins": joins, "join_to_reachable_ms": _stats(samples)}
        finally:
            lab.close()


def _stats(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {"median": statistics.median(s), "p90": s[int(0.9 * (len(s) - 1))], "min": s[0], "max": s[-1]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.overlay", description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=5)
    ap.add_argument("--joins", type=int, default=20)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.hosts, args.joins), indent=2))


if __name__ == "__main__":
    main()
