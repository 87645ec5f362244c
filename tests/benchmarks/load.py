"""``netcore load`` of a ~50 MB image archive vs ``tar -x`` of the same archive (issue 11).

The archive is a ``docker save`` archive of two layers: a busybox-static root and
this host's /usr/lib/python3.11 (~1500 files, many small: a realistic mix). Three
timings per repetition, interleaved:

- ``netcore``: ``netcore load -i ARCHIVE`` end to end (CLI start, the archive sent
  over the API, every layer unpacked and digested, the store committed);
- ``tar-x``: ``tar -xf ARCHIVE`` (GNU tar writes the layer tars out, unpacking nothing);
- ``tar-x-layers``: ``tar -xf ARCHIVE`` then ``tar -xf`` of every layer tar: the same
  files on disk as a load, without digests or whiteout handling.

Run alone: ``python -m tests.benchmarks.load [-r REPS]`` (root: starts its own engine
in a netns, as the harness's netcore peer); or as measure ``load`` of the harness.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from typing import Any

from tests.benchmarks.core import Cleanup, Stats, ratio, rotated, run, timed

ARCHIVE = "/var/tmp/ncb-load.tar"
SCRATCH = "/var/lib/ncb-load-tar"  # on the same filesystem as the engine's root
IMAGE = "ncb-load:latest"
PAYLOAD = "/usr/lib/python3.11"


def _busybox_layer() -> bytes:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
    from image_archives import busybox_rootfs_tar

    return busybox_rootfs_tar()


def build_archive(path: str = ARCHIVE) -> str:
    """The docker save archive, made once (kept in /var/tmp between runs)."""
    if os.path.exists(path):
        return path
    from hashlib import sha256

    layers = [_busybox_layer()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(PAYLOAD, arcname=PAYLOAD.lstrip("/"))
    layers.append(buf.getvalue())
    diff_ids = ["sha256:" + sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w") as tar:
        names = []
        for layer, diff_id in zip(layers, diff_ids):
            ti = tarfile.TarInfo(f"{diff_id[7:]}/layer.tar")
            ti.size = len(layer)
            tar.addfile(ti, io.BytesIO(layer))
            names.append(ti.name)
        for name, data in ((sha256(config).hexdigest() + ".json", config),
                           ("manifest.json", json.dumps([{"Config": sha256(config).hexdigest() + ".json", "RepoTags": [IMAGE], "Layers": names}]).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    os.replace(tmp, path)
    return path


def _fresh(d: str) -> str:
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


TAR_LAYERS = 'cd "$1" && tar -xf "$2" && for l in */layer.tar; do mkdir "$l.d" && tar -xf "$l" -C "$l.d"; done'


def measure(cli: list[str], reps: int, log: Any = print) -> dict[str, Any]:
    """``cli``: the argv prefix of a netcore CLI talking to a running engine."""
    archive = build_archive()
    size = os.path.getsize(archive)
    log(f"load: archive {archive}, {size / 1e6:.1f} MB")
    samples: dict[str, list[float]] = {"netcore": [], "tar-x": [], "tar-x-layers": []}
    try:
        for rep in range(reps):
            for what in rotated(list(samples), rep):
                if what == "netcore":
                    samples[what].append(timed([*cli, "load", "-i", archive]))
                    run([*cli, "rmi", IMAGE])
                elif what == "tar-x":
                    samples[what].append(timed(["tar", "-xf", archive, "-C", _fresh(SCRATCH)]))
                else:
                    samples[what].append(timed(["sh", "-c", TAR_LAYERS, "sh", _fresh(SCRATCH), archive]))
                subprocess.run(["sync"], check=False)  # each starts without the last one's dirty pages
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    stats = {k: Stats.of(v) for k, v in samples.items()}
    out: dict[str, Any] = {k: s.as_dict() if s else None for k, s in stats.items()}
    out["archive_mb"] = round(size / 1e6, 1)
    med = {k: s.median if s else None for k, s in stats.items()}
    out["ratio_vs_tar_x"] = ratio(med["netcore"], med["tar-x"])
    out["ratio_vs_tar_x_layers"] = ratio(med["netcore"], med["tar-x-layers"])
    return out


ENGINE_NS = "ncb-load"  # its own netns, root and socket: never the harness's ncb-netcore
ENGINE_ROOT = "/var/lib/ncb-load-engine"
ENGINE_SOCK = "/run/ncb-load.sock"


def start_engine(cleanup: Cleanup) -> list[str]:
    """A private netcore engine for the standalone run; the CLI argv prefix that talks to it."""
    import socket

    from tests.benchmarks.core import in_netns, netns_add, netns_del
    from tests.benchmarks.netcore_peer import compile_bytecode, netcore_bin

    compile_bytecode()
    cli = [netcore_bin(), "-H", f"unix://{ENGINE_SOCK}"]
    netns_add(ENGINE_NS)
    cleanup.push("netns", lambda: netns_del(ENGINE_NS))
    shutil.rmtree(ENGINE_ROOT, ignore_errors=True)
    cleanup.push("root", lambda: shutil.rmtree(ENGINE_ROOT, ignore_errors=True))
    proc = subprocess.Popen(in_netns(ENGINE_NS, [netcore_bin(), "daemon", "--root", ENGINE_ROOT, "--socket", ENGINE_SOCK]),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop() -> None:
        run([*cli, "system", "reset", "-f"], check=False)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    cleanup.push("engine", stop)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(ENGINE_SOCK)
            return cli
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the netcore engine did not start")
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.load", description=__doc__.splitlines()[0])
    ap.add_argument("-r", "--reps", type=int, default=7, help="repetitions (default 7)")
    a = ap.parse_args(argv)
    cleanup = Cleanup()
    try:
        cli = start_engine(cleanup)
        result = measure(cli, a.reps, log=lambda m: print(m, file=sys.stderr))
    finally:
        cleanup.run_all()
    print(json.dumps(result, indent=2))
    ms = {k: result[k]["median"] for k in ("netcore", "tar-x", "tar-x-layers") if result.get(k)}
    print(f"median ms: netcore load {ms.get('netcore', 0):.0f}, tar -x {ms.get('tar-x', 0):.0f}, tar -x + layers {ms.get('tar-x-layers', 0):.0f}; "
          f"ratios {result['ratio_vs_tar_x']:.2f}x / {result['ratio_vs_tar_x_layers']:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    main()
