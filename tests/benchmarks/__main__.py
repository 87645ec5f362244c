"""``python -m tests.benchmarks``: start the peers in their own netns, run the measures
side by side, write results.json and results.md, and clean everything up (always).

Needs root. Install the peers with scripts/bench-setup.sh; a peer that is missing or
cannot start is skipped with a note.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from typing import Any

from tests.benchmarks.cni import Cni
from tests.benchmarks.core import BenchError, Cleanup, host_firewall, run
from tests.benchmarks.docker_peer import Docker
from tests.benchmarks.floor import KernelFloor
from tests.benchmarks.measures import MEASURES, REPO, Ctx
from tests.benchmarks.netcore_peer import Netcore
from tests.benchmarks.peer import Peer, Unavailable
from tests.benchmarks.podman_peer import Podman
from tests.benchmarks.report import build_rows, markdown

ALL_PEERS = ("netcore", "docker", "podman", "cni", "floor")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Side-by-side benchmarks of netcore vs Docker, Podman, the CNI bridge plugin and the kernel floor (issue 6).",
        epilog="Measures: " + "; ".join(f"{k} = {v[0]}" for k, v in MEASURES.items()),
    )
    ap.add_argument("-m", "--measures", default=",".join(MEASURES), help="comma-separated measures (default: all)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help=f"comma-separated peers (default: {','.join(ALL_PEERS)})")
    ap.add_argument("-r", "--reps", type=int, default=10, help="repetitions of each timed CLI step (default 10)")
    ap.add_argument("-n", "--containers", type=int, default=200, help="containers per peer for measure 'many' (default 200; the issue says 1000)")
    ap.add_argument("--inproc-reps", type=int, default=200, help="iterations of the in-process measure (default 200)")
    ap.add_argument("--ipam-prefix", type=int, default=16, help="prefix length of the IPAM pool to exhaust (default 16)")
    ap.add_argument("--iperf-time", type=int, default=5, help="seconds per iperf3 run (default 5)")
    ap.add_argument("--iperf-reps", type=int, default=2, help="iperf3 runs per peer and mode (default 2)")
    ap.add_argument("-o", "--out", default=os.path.join(REPO, "tests", "benchmarks", "results"),
                    help="output dir for results.json and results.md (default tests/benchmarks/results, git-ignored)")
    a = ap.parse_args(argv)
    a.measures = [m.strip() for m in a.measures.split(",") if m.strip()]
    unknown = [m for m in a.measures if m not in MEASURES]
    if unknown:
        ap.error(f"unknown measure(s) {', '.join(unknown)}; choose from {', '.join(MEASURES)}")
    a.peers = [p.strip() for p in a.peers.split(",") if p.strip()]
    return a


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        with open("/etc/debian_version") as f:
            deb = "Debian " + f.read().strip()
    except OSError:
        deb = platform.platform()
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {deb}, kernel {platform.release()}"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    try:
        import pyroute2
        out["pyroute2"] = getattr(pyroute2, "__version__", "?")
    except ImportError:
        pass
    commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    out["netcore commit"] = commit or "?"
    return out


def start_peers(names: list[str], cleanup: Cleanup, notes: list[str], vers: dict[str, str]) -> tuple[list[Peer], Cni | None, KernelFloor | None]:
    peers: list[Peer] = []
    for name, cls in (("netcore", Netcore), ("docker", Docker), ("podman", Podman)):
        if name not in names:
            continue
        p = cls()
        try:
            log(f"starting {name}")
            p.start(cleanup)
            peers.append(p)
            vers[name] = p.version
            notes += [f"{name}: {n}" for n in p.notes]
        except (Unavailable, BenchError) as exc:
            notes.append(f"{name}: skipped: {exc}")
            log(f"{name} skipped: {exc}")
    cni = floor = None
    if "cni" in names:
        c = Cni()
        why = c.available()
        if why:
            notes.append(f"cni: skipped: {why}")
        else:
            try:
                c.start(cleanup)
                cni = c
                vers["cni"] = c.version
            except BenchError as exc:
                notes.append(f"cni: skipped: {exc}")
    if "floor" in names:
        f = KernelFloor()
        try:
            f.start(cleanup)
            floor = f
            vers["iproute2"] = f.version
        except BenchError as exc:
            notes.append(f"floor: skipped: {exc}")
    return peers, cni, floor


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmarks need root (namespaces, daemons)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.makedirs(a.out, exist_ok=True)
    fw_before = host_firewall()
    netns_before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    notes: list[str] = []
    vers = versions()
    res: dict[str, Any] = {"meta": {
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "loadavg_start": os.getloadavg(), "options": {k: v for k, v in vars(a).items()},
        "argv": sys.argv, "versions": vers, "notes": notes,
    }, "measures": {}}
    cleanup = Cleanup()
    try:
        peers, cni, floor = start_peers(a.peers, cleanup, notes, vers)
        ctx = Ctx(peers=peers, cni=cni, floor=floor, reps=a.reps, containers=a.containers, inproc_reps=a.inproc_reps,
                  ipam_prefix=a.ipam_prefix, iperf_time=a.iperf_time, iperf_reps=a.iperf_reps, log=log)
        for name in a.measures:
            title, fn = MEASURES[name]
            log(f"measure {title}")
            t0 = time.monotonic()
            try:
                res["measures"][name] = fn(ctx)
            except (BenchError, subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
                res["measures"][name] = {"error": str(exc)}
                log(f"measure {name} failed: {exc}")
                traceback.print_exc()
            nc = ctx.peer("netcore")
            if isinstance(nc, Netcore) and not nc.alive():
                notes.append(f"netcore engine DIED during measure {name} (exit status {nc.proc.returncode if nc.proc else '?'}; see /tmp/ncb-netcore-engine.log); later netcore rows are void")
                log(f"netcore engine died during {name}")
                ctx.peers.remove(nc)
                cleanup.push("dead netcore engine", nc.stop)
            res["measures"].setdefault(name, {})
            if isinstance(res["measures"][name], dict):
                res["measures"][name]["seconds"] = round(time.monotonic() - t0, 1)
    except KeyboardInterrupt:
        notes.append("interrupted")
    finally:
        log("cleaning up")
        cleanup.run_all()
        notes += cleanup.errors
        netns_after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        left = sorted(n for n in netns_after - netns_before if n.startswith("ncb"))
        if left:
            notes.append(f"ncb netns left behind: {', '.join(left)}")
        unchanged = host_firewall() == fw_before
        res["meta"]["host_firewall_unchanged"] = unchanged
        notes.append("host firewall (nft ruleset, iptables-save) " + ("unchanged by the run" if unchanged else "CHANGED during the run"))
        res["meta"]["loadavg_end"] = os.getloadavg()
        res["rows"] = build_rows(res)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(res, f, indent=1, default=str)
        md = markdown(res, res["rows"])
        with open(os.path.join(a.out, "results.md"), "w") as f:
            f.write(md)
        print(md)
        log(f"wrote {a.out}/results.json and results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
