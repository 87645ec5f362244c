"""The API's edge: the epoll acceptor with typed bodies against the socketserver it replaced.

Two engines run side by side, each on its own root and socket: the previous one from
the commit before ``runtime/api/schemas.py`` came (the whole tree, ``git archive``),
and this checkout's. Requests go to both over raw unix sockets, interleaved in a
rotating order in every repetition: ``GET /_ping`` (the edge alone), ``GET /networks``,
``POST /networks/create`` + ``DELETE`` (the edge plus kernel work), then ``GET /_ping``
again while 1000 idle connections hang on each engine (the old one holds a thread per
idle connection, the new one none). Ratios are new / old of the medians.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any

from tests.benchmarks.core import BenchError, Stats, ratio, rotated, run
from tests.benchmarks.measures import REPO

IDLE = 1000


def _previous_rev() -> str:
    added = run(["git", "-C", REPO, "log", "--diff-filter=A", "--format=%H", "-1", "--", "runtime/api/schemas.py"]).stdout.strip()
    if not added:
        raise BenchError("no commit adds runtime/api/schemas.py: cannot find the previous API server")
    return added + "^"


def _export(rev: str, dst: str) -> None:
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", rev], capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dst, filter="data")


def _call(sock_path: str, method: str, url: str, body: Any = None) -> int:
    data = b"" if body is None else json.dumps(body).encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(60)
        s.connect(sock_path)
        s.sendall(f"{method} {url} HTTP/1.0\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return int(out.split(None, 2)[1])


def _start(tree: str, tmp: str, name: str) -> tuple[subprocess.Popen, str]:
    root, sock = os.path.join(tmp, f"{name}-root"), os.path.join(tmp, f"{name}.sock")
    log = open(os.path.join(tmp, f"{name}.log"), "ab")
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, "-P", "-m", "runtime.cli", "daemon", "--root", root, "--socket", sock],
                            cwd=tree, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            _call(sock, "GET", "/_ping")
            return proc, sock
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"engine {name} did not start; see {tmp}/{name}.log")
            time.sleep(0.05)


def measure(reps: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="ncb-apiedge-")
    old_tree = os.path.join(tmp, "old")
    os.makedirs(old_tree)
    rev = _previous_rev()
    _export(rev, old_tree)
    engines: dict[str, tuple[subprocess.Popen, str]] = {}
    idle: list[socket.socket] = []
    samples: dict[str, dict[str, list[float]]] = {k: {"ping": [], "networks": [], "create+rm": [], "ping, 1000 idle": []}
                                                   for k in ("old", "new")}
    try:
        engines["old"] = _start(old_tree, tmp, "old")
        engines["new"] = _start(REPO, tmp, "new")
        for rep in range(reps * 20):
            for k in rotated(["old", "new"], rep):
                sock = engines[k][1]
                for what, method, url in (("ping", "GET", "/_ping"), ("networks", "GET", "/networks")):
                    t0 = time.perf_counter()
                    _call(sock, method, url)
                    samples[k][what].append((time.perf_counter() - t0) * 1000)
        for rep in range(reps):
            for k in rotated(["old", "new"], rep):
                sock = engines[k][1]
                t0 = time.perf_counter()
                _call(sock, "POST", "/networks/create", {"Name": "ncbedge", "Driver": "bridge", "Internal": False})
                _call(sock, "DELETE", "/networks/ncbedge")
                samples[k]["create+rm"].append((time.perf_counter() - t0) * 1000)
        for k in ("old", "new"):
            for _ in range(IDLE):
                s = socket.socket(socket.AF_UNIX)
                s.connect(engines[k][1])
                s.sendall(b"GET /_ping HTTP/1.0\r\n")  # headers that never end
                idle.append(s)
        for rep in range(reps * 20):
            for k in rotated(["old", "new"], rep):
                t0 = time.perf_counter()
                _call(engines[k][1], "GET", "/_ping")
                samples[k]["ping, 1000 idle"].append((time.perf_counter() - t0) * 1000)
        threads = {k: len(os.listdir(f"/proc/{p.pid}/task")) for k, (p, _) in engines.items()}
    finally:
        for s in idle:
            s.close()
        for k, (proc, sock) in engines.items():
            try:
                _call(sock, "POST", "/system/reset")
                proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    out: dict[str, Any] = {"previous": run(["git", "-C", REPO, "rev-parse", "--short", rev]).stdout.strip(),
                           "threads with 1000 idle connections": threads}
    for what in samples["old"]:
        old, new = Stats.of(samples["old"][what]), Stats.of(samples["new"][what])
        out[what] = {"old": old.as_dict() if old else None, "new": new.as_dict() if new else None,
                     "new/old": ratio(new.median if new else None, old.median if old else None)}
    return out
