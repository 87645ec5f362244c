"""What a container runs and uses: ``top`` (the host's ``ps``, its rows cut to the
container's processes) and ``stats`` (Docker's stats JSON).

Stats come from the container's cgroup when it has one of its own (memory usage and
limit); without one (this host's containers, unless ``-m``/``--cpus`` made one) they are
summed over the processes of its pid namespace from /proc: CPU time (utime+stime, and
cutime+cstime of reaped children), memory as PSS (shared pages split, so the sum is not
inflated) against the host's memory, block I/O as ``/proc/PID/io``'s read/write bytes of
the live processes; network counters are the container's netns's ``/proc/PID/net/dev``
(every interface but lo) either way.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from runtime.engine.freeze import pids

__all__ = ["top", "sample", "TopError"]

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class TopError(Exception):
    """``ps`` refused its options."""


def top(pid1: int, ps_args: str = "") -> dict[str, Any]:
    """Docker's ``/containers/ID/top``: ``{"Titles": [...], "Processes": [[...], ...]}``."""
    wanted = set(pids(pid1))
    args = ps_args.split() if ps_args else ["-ef"]
    res = subprocess.run(["ps", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise TopError(f"ps: {(res.stderr.strip().splitlines() or ['failed'])[0]}")
    lines = res.stdout.splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    if "PID" not in titles:
        raise TopError("Couldn't find PID field in ps output")
    at = titles.index("PID")
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > at and fields[at].isdigit() and int(fields[at]) in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _cpu_ns(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) * 1_000_000_000 // TICK  # utime stime cutime cstime


def _system_ns() -> int:
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return sum(int(x) for x in line.split()[1:9]) * 1_000_000_000 // TICK
    return 0


def _pss(pid: int) -> int:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    statm = _read(f"/proc/{pid}/statm").split()
    return int(statm[1]) * PAGE if len(statm) > 1 else 0


def _io(pid: int) -> tuple[int, int]:
    vals = dict(line.split(": ") for line in _read(f"/proc/{pid}/io").splitlines() if ": " in line)
    return int(vals.get("read_bytes", 0)), int(vals.get("write_bytes", 0))


def _host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _memory_cgroup(pid: int) -> tuple[int, int] | None:
    """(usage, limit) of ``pid``'s memory cgroup if it is its own, not the engine's."""
    def groups(p: str) -> dict[str, str]:
        out = {}
        for line in _read(f"/proc/{p}/cgroup").splitlines():
            parts = line.split(":", 2)
            if len(parts) == 3:
                for ctl in parts[1].split(","):
                    out[ctl] = parts[2]
        return out

    mine, engine = groups(str(pid)), groups("self")
    if mine.get("memory") not in (None, engine.get("memory"), "/"):
        base = f"/sys/fs/cgroup/memory{mine['memory']}"
        usage, limit = _read(f"{base}/memory.usage_in_bytes").strip(), _read(f"{base}/memory.limit_in_bytes").strip()
        if usage.isdigit():
            return int(usage), int(limit) if limit.isdigit() else 0
    if mine.get("") not in (None, engine.get(""), "/"):
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            usage = _read(f"{root}{mine['']}/memory.current").strip()
            if usage.isdigit():
                limit = _read(f"{root}{mine['']}/memory.max").strip()
                return int(usage), int(limit) if limit.isdigit() else 0
    return None


def _networks(pid1: int) -> dict[str, dict[str, int]]:
    out = {}
    for line in _read(f"/proc/{pid1}/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        name, f = name.strip(), rest.split()
        if name == "lo" or len(f) < 16:
            continue
        out[name] = {"rx_bytes": int(f[0]), "rx_packets": int(f[1]), "rx_errors": int(f[2]), "rx_dropped": int(f[3]),
                     "tx_bytes": int(f[8]), "tx_packets": int(f[9]), "tx_errors": int(f[10]), "tx_dropped": int(f[11])}
    return out


def _cpu(procs: list[int]) -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": sum(_cpu_ns(p) for p in procs)}, "system_cpu_usage": _system_ns(),
            "online_cpus": os.cpu_count() or 1}


def sample(cid: str, name: str, pid1: int | None, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """One stats message (Docker's shape). ``previous``: the last message, whose CPU
    numbers become ``precpu_stats``; ``pid1`` None: not running (all zero, as Docker)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 1_000_000_000:09d}Z"
    procs = pids(pid1) if pid1 else []
    if not procs:
        return {"id": cid, "name": "/" + name, "read": now, "preread": (previous or {}).get("read", "0001-01-01T00:00:00Z"),
                "cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0},
                "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0},
                "memory_stats": {}, "networks": {}, "blkio_stats": {"io_service_bytes_recursive": None}, "pids_stats": {}}
    cg = _memory_cgroup(pid1)
    usage, limit = cg if cg is not None else (sum(_pss(p) for p in procs), 0)
    reads = writes = 0
    for p in procs:
        r, w = _io(p)
        reads, writes = reads + r, writes + w
    empty = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": os.cpu_count() or 1}
    return {
        "id": cid,
        "name": "/" + name,
        "read": now,
        "preread": (previous or {}).get("read", "0001-01-01T00:00:00Z"),
        "cpu_stats": _cpu(procs),
        "precpu_stats": (previous or {}).get("cpu_stats") or empty,
        "memory_stats": {"usage": usage, "limit": limit or _host_memory(),
                         "netcore_source": "cgroup" if cg is not None else "proc"},
        "networks": _networks(pid1),
        "blkio_stats": {"io_service_bytes_recursive": [{"major": 0, "minor": 0, "op": "read", "value": reads},
                                                       {"major": 0, "minor": 0, "op": "write", "value": writes}]},
        "pids_stats": {"current": len(procs)},
    }
