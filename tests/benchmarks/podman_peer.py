"""Podman (Debian's 4.3, CNI network backend): every podman command under ``nsenter --net``.

Podman has no daemon; the command itself sets the network up, so it must run inside
netns ``ncb-podman`` for its bridges and iptables rules to stay there. Storage, run
root, tmp dir and network configs are ncb-private. This sandbox cannot raise rlimits,
hence ``--ulimit``; crun refuses the hybrid cgroup layout here, hence runc.
The nsenter wrapper adds about a millisecond (measured and reported).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from tests.benchmarks.core import (BenchError, Cleanup, cgroup_members, in_netns, infra_processes, kill_pids,
                                   netns_add, netns_del, run, umount_under)
from tests.benchmarks.image import IMAGE, build_rootfs_tar
from tests.benchmarks.peer import Peer, Unavailable

ROOT = "/var/lib/ncb-podman"
RUNROOT = "/run/ncb-podman"
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


class Podman(Peer):
    name = "podman"
    netns = "ncb-podman"
    run_options = ULIMITS
    run_image = (IMAGE,)

    def start(self, cleanup: Cleanup) -> None:
        if not shutil.which("podman"):
            raise Unavailable("podman not installed (scripts/bench-setup.sh)")
        netns_add(self.netns)
        cleanup.push("netns " + self.netns, lambda: netns_del(self.netns))
        cleanup.push("podman state", self.stop)
        self.version = "Podman " + run(["podman", "--version"]).stdout.split()[-1]
        backend = run(self.cli("info", "--format", "{{.Host.NetworkBackend}}"), check=False).stdout.strip()
        self.notes.append(f"network backend {backend or '?'}, runtime runc, cgroupfs, no daemon")
        run(self.cli("import", build_rootfs_tar(), IMAGE))

    def stop(self) -> None:
        """Remove everything podman made here; if it hangs, kill exactly its conmons and containers."""
        try:
            ids = run(self.cli("ps", "-aq"), check=False, timeout=60).stdout.split()
            for i in range(0, len(ids), 50):
                run(self.cli("rm", "-f", "-t", "0", *ids[i:i + 50]), check=False, timeout=180)
            run(self.cli("network", "prune", "-f"), check=False, timeout=60)
        except BenchError as exc:
            self.notes.append(f"podman cleanup hung ({exc}); killed its processes")
        try:
            cids = os.listdir(f"{ROOT}/storage/overlay-containers")
        except OSError:
            cids = []
        if cids and os.path.exists(f"/run/netns/{self.netns}"):
            kill_pids({p: c for p, c in infra_processes(self.netns).items() if c == "conmon"})
            kill_pids(cgroup_members([f"libpod_parent/libpod-{c}" for c in cids]))
        run(self.cli("system", "reset", "-f"), check=False, timeout=300)
        for d in (ROOT, RUNROOT):
            umount_under(d)
            shutil.rmtree(d, ignore_errors=True)
        for hier in os.listdir("/sys/fs/cgroup"):  # the empty parent cgroups podman made
            for d in ("libpod_parent/conmon", "libpod_parent"):
                try:
                    os.rmdir(f"/sys/fs/cgroup/{hier}/{d}")
                except OSError:
                    pass

    def cli(self, *args: str) -> list[str]:
        return in_netns(self.netns, [
            "podman", "--root", f"{ROOT}/storage", "--runroot", f"{RUNROOT}/run", "--tmpdir", f"{RUNROOT}/tmp",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc",
            "--network-config-dir", f"{ROOT}/cni", *args,
        ])

    def rm_force_argv(self, names: Sequence[str]) -> list[str]:
        return self.cli("rm", "-f", "-t", "0", *names)
