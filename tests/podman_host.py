"""A real podman 4.3 (Debian's, CNI backend) for tests, never on the host itself.

Every podman command runs under ``nsenter --net`` in a test's netns (podman has no
daemon: the command itself, and the conmon it leaves, set networks up and down there),
with its own storage, run root and tmp dir under ``nct-podman-<tag>`` dirs, cgroupfs,
the file events backend, runc, and a ``containers.conf`` of its own (``CONTAINERS_CONF``)
naming the CNI config dir (the test's conflists) and the plugin dirs (netcore-cni's,
then Debian's). podman's default network is never used: every ``run`` names a
network. The image is ``podman import`` of the busybox-static rootfs the benchmarks
use. ``stop`` removes containers, storage, run dirs and podman's cgroups.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.core import cgroup_members, kill_pids, umount_under
from tests.benchmarks.image import IMAGE, build_rootfs_tar

__all__ = ["PodmanHost", "available", "IMAGE", "CNI_PLUGIN_DIR"]

CNI_PLUGIN_DIR = str(Path(sys.executable).parent)  # where scripts/setup.sh builds netcore-cni
DEBIAN_CNI = "/usr/lib/cni"


def available() -> str | None:
    """Why podman tests cannot run here, or None."""
    if not shutil.which("podman"):
        return "podman is not installed (scripts/setup.sh installs it)"
    if not shutil.which("runc"):
        return "runc is not installed"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    if not os.path.exists(f"{CNI_PLUGIN_DIR}/netcore-cni"):
        return "netcore-cni is not built (scripts/setup.sh)"
    return None


class PodmanHost:
    """podman in netns ``netns_path``, reading conflists from ``cni_dir``."""

    def __init__(self, netns_path: str, cni_dir: str) -> None:
        self.tag = secrets.token_hex(3)
        self.netns_path = netns_path
        self.cni_dir = cni_dir
        self.root = f"/var/lib/nct-podman-{self.tag}"
        self.runroot = f"/run/nct-podman-{self.tag}"
        self.conf = f"{self.runroot}.conf"

    def start(self) -> "PodmanHost":
        os.makedirs(self.cni_dir, exist_ok=True)
        os.makedirs(self.runroot, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(
                "[containers]\n"
                'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'  # this sandbox cannot raise rlimits
                "[network]\n"
                'network_backend = "cni"\n'
                f'cni_plugin_dirs = ["{CNI_PLUGIN_DIR}", "{DEBIAN_CNI}"]\n'
                f'network_config_dir = "{self.cni_dir}"\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                'runtime = "runc"\n'
            )
        self("import", build_rootfs_tar(), IMAGE)
        return self

    def argv(self, *args: str) -> list[str]:
        return ["nsenter", f"--net={self.netns_path}", "env", f"CONTAINERS_CONF={self.conf}",
                "podman", "--root", f"{self.root}/storage", "--runroot", f"{self.runroot}/run", "--tmpdir", f"{self.runroot}/tmp",
                "--network-backend", "cni", "--network-config-dir", self.cni_dir, "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--runtime", "runc", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def stop(self) -> None:
        """Containers first (their CNI DEL reaches the engine, which must still run), then podman's dirs."""
        try:
            cids = os.listdir(f"{self.root}/storage/overlay-containers")
        except OSError:
            cids = []
        try:
            if cids:
                self("rm", "-af", "-t", "0", check=False, timeout=120)
        except subprocess.TimeoutExpired:
            pass
        kill_pids(cgroup_members([f"libpod_parent/libpod-{c}" for c in cids]))  # never the shared conmon cgroup
        for d in (self.root, self.runroot):
            umount_under(d)
            shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(self.conf):
            os.unlink(self.conf)
        parents = ("libpod_parent/conmon", "libpod_parent")
        for hier in os.listdir("/sys/fs/cgroup"):  # the empty cgroups podman made (rmdir fails on one in use)
            for d in [*(f"libpod_parent/libpod-{c}" for c in cids), *(f"libpod_parent/libpod-conmon-{c}" for c in cids), *parents]:
                try:
                    os.rmdir(f"/sys/fs/cgroup/{hier}/{d}")
                except OSError:
                    pass
