"""Docker Engine (Debian's docker.io): dockerd confined to netns ``ncb-docker``.

dockerd rewrites the firewall of the namespace it runs in (FORWARD policy DROP, NAT
chains) and the host has br_netfilter loaded, so on the host it would break everyone's
bridge traffic. Here it runs under ``nsenter --net`` with its own data root, exec root,
socket and containerd namespace; the CLI on the host talks to that socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from tests.benchmarks.core import (BenchError, Cleanup, cgroup_members, in_netns, infra_processes, kill_pids,
                                   netns_add, netns_del, run, umount_under)
from tests.benchmarks.image import IMAGE, build_rootfs_tar
from tests.benchmarks.peer import Peer, Unavailable

DATA = "/var/lib/ncb-docker"
EXEC = "/run/ncb-docker"
SOCK = "/run/ncb-docker.sock"
PIDFILE = "/run/ncb-docker.pid"


def docker_cli() -> str | None:
    """Debian's client (same release as the daemon) before any other on PATH."""
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else shutil.which("docker")


class Docker(Peer):
    name = "docker"
    netns = "ncb-docker"
    run_image = (IMAGE,)

    def __init__(self) -> None:
        super().__init__()
        self.proc: subprocess.Popen | None = None
        self.bin = docker_cli()

    def start(self, cleanup: Cleanup) -> None:
        if not shutil.which("dockerd") or not self.bin:
            raise Unavailable("dockerd not installed (scripts/bench-setup.sh installs docker.io)")
        netns_add(self.netns)
        cleanup.push("netns " + self.netns, lambda: netns_del(self.netns))
        os.makedirs(DATA, exist_ok=True)
        os.makedirs(EXEC, exist_ok=True)
        cleanup.push("docker dirs", self._wipe)
        log = open("/tmp/ncb-dockerd.log", "ab")
        self.proc = subprocess.Popen(
            in_netns(self.netns, [
                "dockerd", "--data-root", DATA, "--exec-root", EXEC, "--pidfile", PIDFILE,
                "-H", f"unix://{SOCK}", "--containerd-namespace", "ncb", "--containerd-plugins-namespace", "ncb-plugins",
            ]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        cleanup.push("dockerd", self.stop)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if run(self.cli("version", "--format", "{{.Server.Version}}"), check=False).returncode == 0:
                break
            if self.proc.poll() is not None:
                raise Unavailable("dockerd exited at start; see /tmp/ncb-dockerd.log")
            time.sleep(0.25)
        else:
            raise Unavailable("dockerd did not answer within 60 s")
        self.version = "Docker " + run(self.cli("version", "--format", "{{.Server.Version}}")).stdout.strip()
        info = run(self.cli("info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.DefaultRuntime}}")).stdout.strip()
        self.notes.append(f"storage/cgroup/runtime: {info}; userland-proxy on (Docker's default)")
        self.daemon_pids = [self.proc.pid]
        run(self.cli("import", build_rootfs_tar(), IMAGE))

    def stop(self) -> None:
        """Remove containers and networks, stop dockerd; if Docker hangs, kill exactly its processes.

        Seen here: with 1000 containers on a loaded machine, ``docker rm -f`` stalled for
        minutes in ``Daemon.Kill`` waiting for exit events.
        """
        if self.proc is None:
            return
        try:
            ids = run(self.cli("ps", "-aq"), check=False, timeout=60).stdout.split()
            for i in range(0, len(ids), 50):
                run(self.cli("rm", "-f", *ids[i:i + 50]), check=False, timeout=180)
            run(self.cli("network", "prune", "-f"), check=False, timeout=60)
        except BenchError as exc:
            self.notes.append(f"docker cleanup hung ({exc}); killed its processes")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._force_kill()

    def _force_kill(self) -> None:
        """Whatever is left in netns ncb-docker (containerd, shims), then our containers' processes."""
        if os.path.exists(f"/run/netns/{self.netns}"):
            kill_pids(infra_processes(self.netns))
        try:
            ids = os.listdir(f"{DATA}/containers")
        except OSError:
            ids = []
        kill_pids(cgroup_members([f"docker/{i}" for i in ids]))

    def _wipe(self) -> None:
        for d in (EXEC, DATA):
            umount_under(d)
            shutil.rmtree(d, ignore_errors=True)
        for hier in os.listdir("/sys/fs/cgroup"):  # the empty parent cgroup dockerd made
            try:
                os.rmdir(f"/sys/fs/cgroup/{hier}/docker")
            except OSError:
                pass
        for f in (SOCK, PIDFILE):
            if os.path.exists(f):
                os.unlink(f)

    def cli(self, *args: str) -> list[str]:
        return [self.bin or "docker", "-H", f"unix://{SOCK}", *args]

