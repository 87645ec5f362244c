"""Measure ``rootfs``: what a container's own root costs: ``run --rm IMAGE true`` against
``run --rm -- true`` (the host image) on this tree's engine, and against ``run --rm -- true``
on a baseline tree's engine (``NCB_BASELINE_REF``, e.g. the commit before the launcher
changed), interleaved in one run. Each engine has its own netns, root and socket; the
image is a busybox rootfs served from a directory (tests/integration/dirimages.py), so
the measure needs no image store.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Any, Callable

from tests.benchmarks.core import BenchError, Stats, in_netns, netns_add, netns_del, run, timed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "ncb-bb"


class _Engine:
    def __init__(self, tag: str, daemon: list[str], env: dict[str, str]) -> None:
        self.netns, self.root, self.sock = f"ncb-rootfs-{tag}", f"/var/lib/ncb-rootfs-{tag}", f"/run/ncb-rootfs-{tag}.sock"
        self.daemon, self.env = daemon, env
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> list[str]:
        return in_netns(self.netns, [sys.executable, "-m", "runtime.cli", "-H", f"unix://{self.sock}", "--root", self.root, *args])

    def start(self) -> None:
        netns_add(self.netns)
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)
        log = open(f"/tmp/{self.netns}.log", "ab")
        self.proc = subprocess.Popen(in_netns(self.netns, [*self.daemon, "daemon", "--root", self.root, "--socket", self.sock]),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=self.env)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(self.sock)
                    return
                except OSError:
                    time.sleep(0.05)
        raise BenchError(f"engine {self.netns} did not start; see /tmp/{self.netns}.log")

    def stop(self) -> None:
        if self.proc is not None:
            subprocess.run(self.cli("system", "reset", "-f"), env=self.env, capture_output=True, timeout=120)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        netns_del(self.netns)
        shutil.rmtree(self.root, ignore_errors=True)
        for path in (self.sock, f"{self.sock}.lock", f"{self.sock}.start"):  # the engine's socket and its locks
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _baseline(ref: str, dest: str) -> str:
    """The baseline tree's Python packages, exported with ``git archive``."""
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    tar = subprocess.run(["git", "-C", REPO, "archive", ref, "netcore", "drivers", "runtime"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=tar, check=True)
    return dest


def measure(reps: int, log: Callable[[str], None]) -> dict[str, Any]:
    sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
    import dirimages

    images = "/tmp/ncb-rootfs-images"
    shutil.rmtree(images, ignore_errors=True)
    os.makedirs(images)
    from pathlib import Path

    layer = dirimages.busybox_rootfs(Path(images + ".layer"))
    dirimages.add_image(Path(images), IMAGE, [layer])
    env = dict(os.environ)
    engines = {"this": _Engine("a", dirimages.daemon_argv(Path(images)), env)}
    ref = os.environ.get("NCB_BASELINE_REF")
    if ref:
        tree = _baseline(ref, "/tmp/ncb-rootfs-baseline")
        engines["baseline"] = _Engine("b", [sys.executable, "-m", "runtime.cli"], dict(env, PYTHONPATH=tree))
    cases = {"this run --rm IMAGE true": ("this", [IMAGE, "true"]), "this run --rm -- true": ("this", ["--", "true"])}
    if ref:
        cases[f"baseline ({ref}) run --rm -- true"] = ("baseline", ["--", "true"])
    samples: dict[str, list[float]] = {k: [] for k in cases}
    diff: list[float] = []
    try:
        for e in engines.values():
            e.start()
        for key, (eng, argv) in cases.items():  # warm up
            run(engines[eng].cli("run", "--rm", "--network", "none", *argv), env=engines[eng].env)
        keys = list(cases)
        for rep in range(reps):
            k = rep % len(keys)
            got = {}
            for key in keys[k:] + keys[:k]:
                eng, argv = cases[key]
                got[key] = timed(engines[eng].cli("run", "--rm", "--network", "none", *argv), env=engines[eng].env)
                samples[key].append(got[key])
            if ref:
                diff.append(got["this run --rm IMAGE true"] - got[f"baseline ({ref}) run --rm -- true"])
            log(f"  rootfs rep {rep + 1}/{reps}")
    finally:
        for e in engines.values():
            e.stop()
        shutil.rmtree(images, ignore_errors=True)
        shutil.rmtree(images + ".layer", ignore_errors=True)
    out: dict[str, Any] = {k: Stats.of(v).as_dict() for k, v in samples.items()}
    if diff:
        out["IMAGE minus baseline host (paired)"] = Stats.of(diff).as_dict()
    return out
