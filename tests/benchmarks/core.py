"""Shared plumbing: commands, timing, statistics, namespaces, memory, cleanup.

Kept free of any peer so each peer module stays small. All names made here start
with ``ncb`` (the test suite's leak check watches ``nc-``/``nct``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

NETNS_DIR = "/run/netns"


class BenchError(RuntimeError):
    """A command a measure depends on failed; the measure is recorded as failed, the run goes on."""


def run(argv: Sequence[str], check: bool = True, timeout: float = 120, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise ``BenchError`` with its stderr if it fails."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, input=input)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} -> {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc


def timed(argv: Sequence[str], timeout: float = 120, env: dict[str, str] | None = None, input: str | None = None) -> float:
    """Wall-clock milliseconds of one command, end to end (fork/exec of the client included)."""
    t0 = time.perf_counter()
    run(argv, timeout=timeout, env=env, input=input)
    return (time.perf_counter() - t0) * 1000


def timed_call(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


@dataclass
class Stats:
    """Milliseconds (or any unit) of one series: median, min, max, p99, count."""

    n: int
    median: float
    min: float
    max: float
    p99: float
    mean: float

    @classmethod
    def of(cls, xs: Sequence[float]) -> "Stats | None":
        if not xs:
            return None
        s = sorted(xs)
        p99 = s[min(len(s) - 1, max(0, int(round(0.99 * len(s))) - 1))]
        return cls(len(s), statistics.median(s), s[0], s[-1], p99, statistics.fmean(s))

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b not in (None, 0) else None


def rotated(items: Sequence[Any], rep: int) -> list[Any]:
    """The peers in a different order each repetition, so none always goes first on a busy machine."""
    if not items:
        return []
    k = rep % len(items)
    return list(items[k:]) + list(items[:k])


# ------------------------------------------------------------------ namespaces ----

def netns_add(name: str) -> str:
    """A fresh named netns with lo up (``ip netns add``); returns its path."""
    assert name.startswith("ncb"), name
    if os.path.exists(f"{NETNS_DIR}/{name}"):
        netns_del(name)
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return f"{NETNS_DIR}/{name}"


def netns_del(name: str) -> None:
    assert name.startswith("ncb"), name
    run(["ip", "netns", "del", name], check=False)


def in_netns(name: str, argv: Sequence[str]) -> list[str]:
    """Run ``argv`` in the netns ``name`` only (``nsenter --net``).

    Not ``ip netns exec``: that also remounts /sys, which hides the cgroup mounts
    dockerd and podman need.
    """
    return ["nsenter", f"--net={NETNS_DIR}/{name}", *argv]


def host_firewall() -> str:
    """The host's firewall outside netcore's own tables, to prove a run changed nothing.

    Tables named ``netcore*`` come and go with the test suites running beside us, so
    they are left out; Docker's or Podman's rules would show up in ``ip``/``ip6``
    ``filter``/``nat`` tables, which are compared in full (plus ``iptables-save``).
    """
    import json

    raw = run(["nft", "-j", "list", "ruleset"], check=False).stdout
    kept = []
    try:
        for item in json.loads(raw).get("nftables", []):
            (kind, obj), = item.items()
            table = obj.get("name") if kind == "table" else obj.get("table")
            if kind != "metainfo" and not str(table).startswith("netcore"):
                obj = {k: v for k, v in obj.items() if k not in ("handle",)}
                kept.append(json.dumps({kind: obj}, sort_keys=True))
    except (ValueError, AttributeError):
        kept.append(raw)
    if shutil.which("iptables-save"):
        kept += [ln for ln in run(["iptables-save"], check=False).stdout.splitlines() if not ln.startswith("#")]
    return "\n".join(sorted(kept))


# ------------------------------------------------------------------ memory --------

def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages are split between their users, so sums are fair."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _ns_inode(pid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def infra_processes(netns_name: str, also_children_of: Sequence[int] = (), any_pidns: bool = False) -> dict[int, str]:
    """The peer's own processes (daemons, shims, monitors), not the containers' workloads.

    Every process in the peer's netns, plus the children of ``also_children_of`` (netcore's
    monitors sit in the container's netns), keeping only those in the host's pid namespace
    (a container's processes have their own) unless ``any_pidns``.
    """
    target = os.stat(f"{NETNS_DIR}/{netns_name}").st_ino
    host_pidns = _ns_inode(os.getpid(), "pid")  # /proc/1 may be unreadable in a sandbox
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            if _ns_inode(pid, "net") == target and (any_pidns or _ns_inode(pid, "pid") == host_pidns):
                found[pid] = _comm(pid)
    for parent in list(also_children_of):
        for c in _children(parent):
            if _ns_inode(c, "pid") == host_pidns:
                found[c] = _comm(c)
    return found


def kill_pids(pids: dict[int, str] | list[int]) -> int:
    """SIGKILL exactly these processes (never by name); returns how many were signalled."""
    import signal

    n = 0
    for pid in list(pids):
        try:
            os.kill(pid, signal.SIGKILL)
            n += 1
        except ProcessLookupError:
            pass
    return n


def cgroup_members(relative_dirs: list[str]) -> list[int]:
    """Pids in the given cgroup dirs (relative to each v1 hierarchy, e.g. ``docker/<id>``)."""
    out: set[int] = set()
    base = "/sys/fs/cgroup"
    for hier in ("pids", "memory", "unified"):
        for rel in relative_dirs:
            try:
                with open(f"{base}/{hier}/{rel}/cgroup.procs") as f:
                    out.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return sorted(out)


def umount_under(path: str) -> int:
    """Lazily unmount every mount at or below ``path``, deepest first (a killed dockerd leaves
    one netns bind mount per container under its exec root); returns how many."""
    path = path.rstrip("/")
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                points.append(mp)
    for mp in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    return len(points)


def memory_kib(procs: dict[int, str]) -> int:
    return sum(pss_kib(p) for p in procs)


# ------------------------------------------------------------------ cleanup -------

@dataclass
class Cleanup:
    """Undo actions run in reverse at the end, whatever failed (the harness's safety net)."""

    actions: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def push(self, what: str, fn: Callable[[], Any]) -> None:
        self.actions.append((what, fn))

    def run_all(self) -> None:
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as exc:  # keep going: the rest must still be undone
                self.errors.append(f"cleanup {what}: {exc}")
