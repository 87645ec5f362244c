"""The peers' image: a tiny rootfs from Debian's busybox-static, loaded with ``docker import``.

No registry is reachable here, so the image is built locally: /bin/busybox with one
symlink per applet (``true`` included: an imported busybox has no link unless one is
made) plus iperf3 and the libraries it loads, for the throughput measure. netcore's
containers run the host's root filesystem, which has the same iperf3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

from tests.benchmarks.core import BenchError

IMAGE = "ncb-busybox:latest"
TARBALL = "/tmp/ncb-rootfs.tar"
BUSYBOX = "/bin/busybox"


def _libs(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            paths.append(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])  # the dynamic loader
    return paths


def build_rootfs_tar(path: str = TARBALL) -> str:
    """Write the rootfs tarball once; returns its path."""
    if os.path.exists(path):
        return path
    if not os.path.exists(BUSYBOX):
        raise BenchError("busybox-static is not installed (scripts/bench-setup.sh)")
    root = path + ".d"
    shutil.rmtree(root, ignore_errors=True)
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "usr/bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, f"{root}/bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in {*applets, "true", "sleep", "sh", "nslookup", "cat"}:
        link = f"{root}/bin/{applet}"
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    iperf = shutil.which("iperf3")
    if iperf:
        shutil.copy2(iperf, f"{root}/usr/bin/iperf3")
        for lib in _libs(iperf):
            dst = root + lib
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dst)
    with tarfile.open(path + ".tmp", "w") as tar:
        tar.add(root, arcname=".")
    os.replace(path + ".tmp", path)
    shutil.rmtree(root, ignore_errors=True)
    return path
