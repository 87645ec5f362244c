"""Measure ``build``: the book's Dockerfile, cold (``--no-cache``) and unchanged (all from the cache).

The context is the book's: its hello-world server built with Debian's Go toolchain as the
book builds it (static, ``CGO_ENABLED=0``) and its Dockerfile verbatim. netcore and
Docker's classic builder (``DOCKER_BUILDKIT=0``: the builder whose output netcore's
follows) build the same context in the same repetitions, interleaved; other peers have
no comparable builder here and are left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from tests.benchmarks.core import BenchError, Stats, rotated, run, timed

CTX = "/tmp/ncb-build-ctx"
FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "helloworld")
TAG = "ncb-testserver"
PEERS = ("netcore", "docker")


def context() -> str:
    """The book's context: the server binary and the Dockerfile (made once)."""
    if os.path.exists(os.path.join(CTX, "server")):
        return CTX
    go = shutil.which("go")
    if not go:
        raise BenchError("golang-go is not installed (scripts/setup.sh installs it)")
    os.makedirs(CTX, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off", "GOCACHE": CTX + ".gocache", "GOPATH": CTX + ".gopath"}
    res = subprocess.run([go, "build", "-ldflags", "-s", "-o", os.path.join(CTX, "server"), os.path.join(FIXTURE, "main.go")],
                         env=env, capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise BenchError(f"go build failed: {res.stderr.strip()[-300:]}")
    shutil.copy(os.path.join(FIXTURE, "Dockerfile"), os.path.join(CTX, "Dockerfile"))
    shutil.rmtree(CTX + ".gocache", ignore_errors=True)
    return CTX


def _argv(p: Any, no_cache: bool) -> list[str]:
    return p.cli("build", *(["--no-cache"] if no_cache else []), "-t", TAG, context())


def _env(p: Any) -> dict[str, str] | None:
    return {**os.environ, "DOCKER_BUILDKIT": "0"} if p.name == "docker" else None


def m_build(ctx: Any) -> dict[str, Any]:
    peers = [p for p in ctx.peers if p.name in PEERS]
    out: dict[str, Any] = {"notes": [f"{p.name}: no comparable builder, not measured" for p in ctx.peers if p.name not in PEERS]}
    for p in peers:  # the first build of all (context upload, store warm-up) is not timed
        run(_argv(p, True), env=_env(p), timeout=300)
    s: dict[str, list[float]] = {}
    for rep in range(ctx.reps):
        for p in rotated(peers, rep):
            s.setdefault(f"{p.name} cold", []).append(timed(_argv(p, True), env=_env(p), timeout=300))
            s.setdefault(f"{p.name} unchanged", []).append(timed(_argv(p, False), env=_env(p), timeout=300))
        ctx.log(f"  build rep {rep + 1}/{ctx.reps}")
    for p in peers:  # the rebuild must really have come from the cache
        text = run(_argv(p, False), env=_env(p)).stdout + run(_argv(p, False), env=_env(p)).stderr
        if text.count("Using cache") < 4:
            out["notes"].append(f"{p.name}: the unchanged rebuild did not use the cache for every step")
    out.update({k: Stats.of(v).as_dict() for k, v in s.items()})
    return out


def rows(m: dict[str, Any], row: Any, get: Any, ratio: Any) -> list[dict[str, Any]]:
    b = m.get("build") or {}
    nc_cold, dk_cold = get(b, "netcore cold", "median"), get(b, "docker cold", "median")
    r = ratio(nc_cold, dk_cold)
    nc_warm = get(b, "netcore unchanged", "median")
    return [
        row("build of the book's Dockerfile, cold (--no-cache)", nc_cold, "docker (classic builder)", dk_cold,
            "ratio ≤ 1", None if r is None else r <= 1),
        row("build of the book's Dockerfile, unchanged (cache)", nc_warm, "docker (classic builder)",
            get(b, "docker unchanged", "median"), "netcore ≤ 1000 ms", None if nc_warm is None else nc_warm <= 1000),
    ]
