"""The ten measures of issue 6. Each takes the started peers and returns a result dict.

Peers are interleaved inside every repetition (in a rotating order) so that load from
other work on this shared 2-core machine hits them alike; statistics are over
repetitions. A measure that fails records its error and the run goes on.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.benchmarks import build, group
from tests.benchmarks.cni import Cni, NetcoreCni
from tests.benchmarks.compose import m_compose
from tests.benchmarks.core import BenchError, Cleanup, Stats, in_netns, memory_kib, rotated, run, timed
from tests.benchmarks.floor import KernelFloor
from tests.benchmarks.peer import Peer

RUN_NET = "ncbrun"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Ctx:
    """What a measure may use: the started peers and the options."""

    peers: list[Peer]
    cni: Cni | None
    floor: KernelFloor | None
    reps: int
    containers: int
    inproc_reps: int
    ipam_prefix: int
    iperf_time: int
    iperf_reps: int
    log: Callable[[str], None]
    made: dict[str, set[str]] = field(default_factory=dict)  # peer -> networks made by measures

    def peer(self, name: str) -> Peer | None:
        return next((p for p in self.peers if p.name == name), None)


def _series(samples: dict[str, list[float]]) -> dict[str, Any]:
    return {k: Stats.of(v).as_dict() if v else None for k, v in samples.items()}


def _ensure_run_net(ctx: Ctx) -> None:
    """Each peer gets one user-defined bridge network ``ncbrun`` (same subnet in every netns)."""
    for p in ctx.peers:
        if RUN_NET not in ctx.made.setdefault(p.name, set()):
            run(p.network_create_argv(RUN_NET, "10.230.0.0/16"))
            ctx.made[p.name].add(RUN_NET)


# ------------------------------------------------------------------ 1 + 2 -----------

def m_run(ctx: Ctx) -> dict[str, Any]:
    """1 (bridge minus none, CNI ADD+DEL, kernel floor) and 2 (``run --rm`` end to end), together."""
    _ensure_run_net(ctx)
    for p in ctx.peers:  # warm caches (image, CLI pages) outside the timing
        run(p.run_argv(RUN_NET, ["true"]))
        run(p.run_argv("none", ["true"]))
    s: dict[str, list[float]] = {}
    diff: dict[str, list[float]] = {}
    for rep in range(ctx.reps):
        order = ("bridge", "none") if rep % 2 == 0 else ("none", "bridge")
        for p in rotated(ctx.peers, rep):
            got = {}
            for kind in order:
                got[kind] = timed(p.run_argv(RUN_NET if kind == "bridge" else "none", ["true"]))
                s.setdefault(f"{p.name} run {kind}", []).append(got[kind])
            diff.setdefault(p.name, []).append(got["bridge"] - got["none"])
        if ctx.cni:
            s.setdefault("cni add+del", []).append(ctx.cni.add_del_ms(rep))
        if ctx.floor:
            s.setdefault("floor endpoint", []).append(ctx.floor.endpoint_ms(rep))
            s.setdefault("floor netns+endpoint", []).append(ctx.floor.full_ms(rep))
        s.setdefault("nsenter wrapper", []).append(timed(in_netns(ctx.peers[0].netns, ["true"])))
        ctx.log(f"  run rep {rep + 1}/{ctx.reps}")
    out = _series(s)
    out.update({f"{k} bridge-none (paired)": Stats.of(v).as_dict() for k, v in diff.items()})
    return out


# ------------------------------------------------------------------ 3 ---------------

def m_network_create_rm(ctx: Ctx) -> dict[str, Any]:
    s: dict[str, list[float]] = {}
    for rep in range(ctx.reps):
        for p in rotated(ctx.peers, rep):
            name = f"ncbnet{rep}"
            s.setdefault(f"{p.name} create", []).append(timed(p.network_create_argv(name, f"10.231.{rep % 250}.0/24")))
            s.setdefault(f"{p.name} rm", []).append(timed(p.network_rm_argv(name)))
    return _series(s)


# ------------------------------------------------------------------ 4 ---------------

def m_connect(ctx: Ctx) -> dict[str, Any]:
    _ensure_run_net(ctx)
    s: dict[str, list[float]] = {}
    ready = []
    try:
        for p in ctx.peers:
            run(p.network_create_argv("ncbconn", "10.232.0.0/16"))
            ready.append(p)
            run(p.run_argv(RUN_NET, ["sleep", "3600"], rm=False, detach=True, name="ncb-conn"))
        for rep in range(ctx.reps):
            for p in rotated(ctx.peers, rep):
                s.setdefault(f"{p.name} connect", []).append(timed(p.connect_argv("ncbconn", "ncb-conn")))
                s.setdefault(f"{p.name} disconnect", []).append(timed(p.disconnect_argv("ncbconn", "ncb-conn")))
    finally:
        for p in ready:
            run(p.rm_force_argv(["ncb-conn"]), check=False)
            run(p.network_rm_argv("ncbconn"), check=False)
    return _series(s)


# ------------------------------------------------------------------ 5 + 7 -----------

def m_inproc(ctx: Ctx, what: str) -> dict[str, Any]:
    """Runs the in-process worker in its own netns (see inproc.py)."""
    from tests.benchmarks.core import netns_add, netns_del

    ns = "ncb-inproc"
    netns_add(ns)
    try:
        argv = in_netns(ns, [sys.executable, "-m", "tests.benchmarks.inproc", "--what", what,
                             "--reps", str(ctx.inproc_reps), "--ipam-prefix", str(ctx.ipam_prefix)])
        env = dict(os.environ, PYTHONPATH=REPO)
        out = run(argv, timeout=1800, env=env)
        return json.loads(out.stdout)
    finally:
        netns_del(ns)


def m_inproc_endpoint(ctx: Ctx) -> dict[str, Any]:
    return m_inproc(ctx, "controller,floor")


def m_ipam(ctx: Ctx) -> dict[str, Any]:
    return m_inproc(ctx, "ipam")


# ------------------------------------------------------------------ 6 ---------------

def _split_infra(p: Peer) -> tuple[int, int, int]:
    """(engine KiB, per-container supervisors KiB, supervisor count): daemons vs shims/monitors."""
    procs = p.infra()
    daemons = {pid: c for pid, c in procs.items() if pid in p.daemon_pids or c in ("dockerd", "containerd")}
    sup = {pid: c for pid, c in procs.items() if pid not in daemons}
    return memory_kib(daemons), memory_kib(sup), len(sup)


def m_many(ctx: Ctx) -> dict[str, Any]:
    n = ctx.containers
    s: dict[str, list[float]] = {p.name: [] for p in ctx.peers}
    before = {p.name: _split_infra(p) for p in ctx.peers}
    started: dict[str, list[str]] = {p.name: [] for p in ctx.peers}
    out: dict[str, Any] = {"n": n}
    try:
        for p in ctx.peers:
            run(p.network_create_argv("ncbmany", "10.233.0.0/16"))
        for i in range(n):
            for p in rotated(ctx.peers, i):
                name = f"ncb-m{i}"
                s[p.name].append(timed(p.run_argv("ncbmany", ["sleep", "3600"], rm=False, detach=True, name=name)))
                started[p.name].append(name)
            if (i + 1) % 25 == 0:
                ctx.log(f"  {i + 1}/{n} containers per peer")
        time.sleep(2)  # let supervisors settle before reading memory
        for p in ctx.peers:
            eng0, sup0, _ = before[p.name]
            eng1, sup1, nsup = _split_infra(p)
            k = min(100, n // 2) or 1
            out[p.name] = {
                "all": Stats.of(s[p.name]).as_dict(),
                f"first_{k}": Stats.of(s[p.name][:k]).as_dict(),
                f"last_{k}": Stats.of(s[p.name][-k:]).as_dict(),
                "engine_kib_before": eng0, "engine_kib_after": eng1,
                "engine_kib_per_container": round((eng1 - eng0) / n, 1),
                "supervisor_kib_per_container": round((sup1 - sup0) / n, 1),
                "supervisor_processes": nsup,
            }
    finally:
        for p in ctx.peers:  # a peer that hangs here is left to its stop(), which kills it
            t0 = time.perf_counter()
            try:
                for i in range(0, len(started[p.name]), 50):
                    run(p.rm_force_argv(started[p.name][i:i + 50]), check=False, timeout=180)
                if p.name in out:
                    out[p.name]["rm_f_ms_per_container"] = round((time.perf_counter() - t0) * 1000 / max(1, len(started[p.name])), 1)
                run(p.network_rm_argv("ncbmany"), check=False, timeout=120)
            except BenchError as exc:
                out.setdefault("notes", []).append(f"{p.name}: removing the containers hung: {exc}")
    return out


# ------------------------------------------------------------------ 8 ---------------

def _iperf_client(argv: Sequence[str]) -> float:
    """Gbit/s received, retrying while the server container is still starting."""
    last = ""
    for _ in range(10):
        proc = run(argv, check=False, timeout=120)
        if proc.returncode == 0:
            data = json.loads(proc.stdout)
            return data["end"]["sum_received"]["bits_per_second"] / 1e9
        last = (proc.stderr or proc.stdout)[-300:]
        time.sleep(0.5)
    raise BenchError(f"iperf3 client failed: {last}")


def m_throughput(ctx: Ctx) -> dict[str, Any]:
    _ensure_run_net(ctx)
    s: dict[str, list[float]] = {}
    ready = []
    try:
        for p in ctx.peers:
            run(p.run_argv(RUN_NET, ["iperf3", "-s"], rm=False, detach=True, name="ncb-ipsrv", publish="127.0.0.1:15201:5201"))
            ready.append(p)
        ips = {p.name: p.container_ip("ncb-ipsrv", RUN_NET) for p in ctx.peers}
        t = str(ctx.iperf_time)
        for rep in range(ctx.iperf_reps):
            for p in rotated(ctx.peers, rep):
                s.setdefault(f"{p.name} container-container", []).append(_iperf_client(
                    p.run_argv(RUN_NET, ["iperf3", "-c", ips[p.name], "-t", t, "-J"])))
                s.setdefault(f"{p.name} published 127.0.0.1", []).append(_iperf_client(
                    p.host_netns_argv(["iperf3", "-c", "127.0.0.1", "-p", "15201", "-t", t, "-J"])))
    finally:
        for p in ready:
            run(p.rm_force_argv(["ncb-ipsrv"]), check=False)
    out = _series(s)
    out["unit"] = "Gbit/s"
    return out


# ------------------------------------------------------------------ 9 ---------------

def _nameserver(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return None


def m_dns(ctx: Ctx) -> dict[str, Any]:
    """Time A queries for another container's name, from inside a container's netns.

    Only a resolver at 127.0.0.11 (the embedded-DNS address) or inside the container's
    own network is queried: traffic must never head for an outside address.
    """
    _ensure_run_net(ctx)
    out: dict[str, Any] = {"notes": []}
    for p in ctx.peers:
        made = []
        try:
            for n in ("ncb-dnsa", "ncb-dnsb"):
                run(p.run_argv(RUN_NET, ["sleep", "3600"], rm=False, detach=True, name=n))
                made.append(n)
            pid = p.container_pid("ncb-dnsb")
            ns = _nameserver(pid)
            inside = ns is not None and (ns == "127.0.0.11" or ipaddress.ip_address(ns) in ipaddress.ip_network("10.230.0.0/16"))
            if not inside:
                out["notes"].append(f"{p.name}: resolver {ns} is not an embedded DNS (127.0.0.11 or on the network): "
                                    "no container-name DNS, skipped")
                continue
            probe = run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-m", "tests.benchmarks.dnsprobe",
                         "--server", ns, "--name", "ncb-dnsa", "--count", str(max(20, ctx.reps * 5))],
                        env=dict(os.environ, PYTHONPATH=REPO))
            data = json.loads(probe.stdout)
            want = p.container_ip("ncb-dnsa", RUN_NET)
            if data["answer"] != want:
                out["notes"].append(f"{p.name}: resolver {ns} answered {data['answer']!r}, expected {want}: skipped")
                continue
            out[p.name] = Stats.of(data["ms"]).as_dict() if data["ms"] else None
        finally:
            if made:
                run(p.rm_force_argv(made), check=False)
    return out


# ------------------------------------------------------------------ 10 --------------

def m_ls(ctx: Ctx) -> dict[str, Any]:
    s: dict[str, list[float]] = {}
    for rep in range(ctx.reps):
        for p in rotated(ctx.peers, rep):
            s.setdefault(p.name, []).append(timed(p.ls_argv()))
    return _series(s)


def m_format(ctx: Ctx) -> dict[str, Any]:
    """Issue 16: ``ps --format`` and ``inspect -f`` against plain ``ps`` and ``inspect`` (netcore, and Docker side by side)."""
    from tests.benchmarks import formatting

    peers = [p for p in ctx.peers if p.name in ("netcore", "docker")]
    if not peers:
        return {"notes": ["neither netcore nor docker running: skipped"]}
    _ensure_run_net(ctx)
    return formatting.measure(peers, ctx.reps, RUN_NET)


def m_breakdown(ctx: Ctx) -> dict[str, Any]:
    """Diagnostic: netcore's CLI time split into interpreter, imports and engine (API) time."""
    from tests.benchmarks import breakdown
    from tests.benchmarks.netcore_peer import Netcore

    nc = ctx.peer("netcore")
    if not isinstance(nc, Netcore):
        return {"notes": ["netcore not running: skipped"]}
    _ensure_run_net(ctx)
    return breakdown.measure(nc, ctx.reps)


def m_rootfs(ctx: Ctx) -> dict[str, Any]:
    """A container's own root: run --rm IMAGE true vs -- true, and vs a baseline tree (NCB_BASELINE_REF)."""
    from tests.benchmarks import rootfs

    return rootfs.measure(ctx.reps, ctx.log)


def m_clilib(ctx: Ctx) -> dict[str, Any]:
    """click's cost over the argparse CLI it replaced (issue 13), against the bare import of click."""
    from tests.benchmarks import clilib
    from tests.benchmarks.netcore_peer import Netcore

    nc = ctx.peer("netcore")
    if not isinstance(nc, Netcore):
        return {"notes": ["netcore not running: skipped"]}
    return clilib.measure(nc, ctx.reps)


def m_load(ctx: Ctx) -> dict[str, Any]:
    """Issue 11: ``netcore load`` of a ~57 MB archive vs ``tar -x`` of it (see load.py)."""
    from tests.benchmarks import load
    from tests.benchmarks.netcore_peer import SOCK, Netcore

    nc = ctx.peer("netcore")
    if not isinstance(nc, Netcore):
        return {"notes": ["netcore not running: skipped"]}
    return load.measure([nc.bin, "-H", f"unix://{SOCK}"], ctx.reps, ctx.log)


def m_apiedge(ctx: Ctx) -> dict[str, Any]:
    """The API's edge (issue 12): the epoll acceptor with typed bodies vs the socketserver it replaced."""
    from tests.benchmarks import apiedge

    return apiedge.measure(ctx.reps)


def m_cni(ctx: Ctx) -> dict[str, Any]:
    """Issue 14: netcore-cni ADD+DEL against the CNI bridge plugin's, interleaved per repetition."""
    nc = ctx.peer("netcore")
    if ctx.cni is None or nc is None:
        raise BenchError("needs the cni and netcore peers (--peers netcore,cni)")
    mine = NetcoreCni(nc)
    why = mine.available()
    if why:
        raise BenchError(why)
    cleanup = Cleanup()
    try:
        mine.start(cleanup)
        mine.add_del_ms(-1)  # warm: the network's bridge exists from here on, as the bridge plugin's does after its first ADD
        ctx.cni.add_del_ms(-1)
        s: dict[str, list[float]] = {}
        for rep in range(ctx.reps):
            for who in (("bridge", "netcore") if rep % 2 == 0 else ("netcore", "bridge")):
                if who == "bridge":
                    s.setdefault("cni bridge add+del", []).append(ctx.cni.add_del_ms(rep))
                else:
                    both, add, dele = mine.add_del_ms(rep)
                    s.setdefault("netcore-cni add+del", []).append(both)
                    s.setdefault("netcore-cni add", []).append(add)
                    s.setdefault("netcore-cni del", []).append(dele)
            s.setdefault("netcore-cni exec floor (VERSION)", []).append(mine.exec_floor_ms())
            s.setdefault("python -c pass (interpreter floor)", []).append(timed(in_netns(nc.netns, [sys.executable, "-c", "pass"])))
            ctx.log(f"  cni rep {rep + 1}/{ctx.reps}")
        return _series(s)
    finally:
        cleanup.run_all()


MEASURES: dict[str, tuple[str, Callable[[Ctx], dict[str, Any]]]] = {
    "run": ("1+2: network setup+teardown per container; run --rm end to end", m_run),
    "network": ("3: network create / rm (CLI)", m_network_create_rm),
    "connect": ("4: network connect / disconnect on a running container", m_connect),
    "inproc": ("5: in-process endpoint create+join+leave+delete vs the kernel floor", m_inproc_endpoint),
    "many": ("6: N sleeping containers on one bridge network", m_many),
    "ipam": ("7: IPAM: allocate and release every address of a pool", m_ipam),
    "throughput": ("8: TCP throughput (iperf3)", m_throughput),
    "dns": ("9: DNS round trip for another container's name", m_dns),
    "ls": ("10: CLI network ls round trip", m_ls),
    "format": ("issue 16: ps --format and inspect -f vs plain ps and inspect", m_format),
    "rootfs": ("11: run --rm IMAGE true vs run --rm -- true (own root vs host image; NCB_BASELINE_REF: vs that tree)", m_rootfs),
    "clilib": ("click CLI vs the argparse CLI it replaced, vs the bare import of click", m_clilib),
    "load": ("issue 11: netcore load of a ~57 MB docker-save archive vs tar -x", m_load),
    "breakdown": ("diagnostic: netcore CLI time = interpreter + imports + engine (API)", m_breakdown),
    "compose": ("compose up -d / down of the book's two services (docker-compose 1.29 on Docker)", m_compose),
    "apiedge": ("the API edge vs the socketserver it replaced: requests, and 1000 idle connections", m_apiedge),
    "build": ("build of the book's Dockerfile: cold and unchanged, vs Docker's classic builder", build.m_build),
    "cni": ("issue 14: netcore-cni ADD+DEL vs the CNI bridge plugin's, exec'd alike", m_cni),
    "group": ("issue 16 item 6: pause, unpause, top, stats --no-stream, cp, diff, rename, info, events", group.m_group),
}
