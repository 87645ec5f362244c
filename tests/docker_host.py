"""A real Docker Engine (Debian's docker.io) for tests, never on the host itself.

dockerd runs in a network namespace of its own (it rewrites the firewall of the
namespace it runs in) and a mount namespace of its own, in which a temp dir of the
test is bind-mounted over ``/run/docker/plugins`` (dockerd's fixed plugin dir), with
its own data root, exec root, pidfile, socket and containerd namespace: tests side by
side never see each other's plugins or containers. The image is ``docker import`` of
the busybox-static rootfs the benchmarks use. Everything is removed by ``stop``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time

from tests.benchmarks.core import cgroup_members, infra_processes, kill_pids
from tests.benchmarks.image import IMAGE, build_rootfs_tar

__all__ = ["DockerHost", "available", "IMAGE"]

DOCKER = "/usr/bin/docker"


def available() -> str | None:
    """Why Docker tests cannot run here, or None."""
    if not shutil.which("dockerd") or not os.path.exists(DOCKER):
        return "dockerd is not installed (scripts/setup.sh installs docker.io)"
    if not os.path.exists("/bin/busybox"):
        return "busybox-static is not installed"
    return None


class DockerHost:
    """``start()`` a dockerd in netns ``nct-d<hex>``; ``host(...)`` runs the docker CLI against it."""

    def __init__(self, plugins_dir: str, live_restore: bool = True, netns: str | None = None) -> None:
        self.tag = secrets.token_hex(3)
        self.own_netns = netns is None  # else: a test host's netns, made and removed by its owner
        self.netns = netns or f"nct-d{self.tag}"
        self.netns_path = f"/run/netns/{self.netns}"
        self.data = f"/var/lib/nct-docker-{self.tag}"
        self.exec_root = f"/run/nct-docker-{self.tag}"
        self.sock = f"/run/nct-docker-{self.tag}.sock"
        self.pidfile = f"/run/nct-docker-{self.tag}.pid"
        self.log = f"/tmp/nct-dockerd-{self.tag}.log"
        self.plugins_dir = plugins_dir
        self.live_restore = live_restore
        self.proc: subprocess.Popen | None = None
        self._made_netns = False

    def setup_netns(self) -> None:
        """The netns, and the mount namespace (held by a sleeping process, so that it outlives a
        dockerd restart: the containers' netns bind mounts live there)."""
        if self.own_netns:
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self._made_netns = True
        for d in (self.plugins_dir, "/run/docker/plugins"):
            os.makedirs(d, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "slave", "bash", "-c", 'mount --bind "$1" /run/docker/plugins && echo ok && exec sleep infinity',
             "bash", self.plugins_dir], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self.holder.stdout.readline().strip() != "ok":
            raise RuntimeError("could not make dockerd's mount namespace")

    def start(self) -> "DockerHost":
        if not self._made_netns:
            self.setup_netns()
        for d in (self.data, self.exec_root):
            os.makedirs(d, exist_ok=True)
        args = ["dockerd", "--data-root", self.data, "--exec-root", self.exec_root, "--pidfile", self.pidfile,
                "-H", f"unix://{self.sock}", "--containerd-namespace", f"nct{self.tag}",
                "--containerd-plugins-namespace", f"nct{self.tag}p", *(["--live-restore"] if self.live_restore else [])]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", f"--net={self.netns_path}", *args],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 90
        while self("version", "--format", "{{.Server.Version}}", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockerd did not start: " + open(self.log).read()[-2000:])
            time.sleep(0.25)
        if IMAGE not in self("images", "--format", "{{.Repository}}:{{.Tag}}").stdout:
            self("import", build_rootfs_tar(), IMAGE)
        return self

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run([DOCKER, "-H", f"unix://{self.sock}", *args], capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def restart(self) -> None:
        """Stop dockerd (containers keep running with live-restore) and start it again."""
        self._stop_daemon()
        self.start()

    def _stop_daemon(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def _own_processes(self) -> list[int]:
        """dockerd's leftovers (containerd, shims): processes in its netns *and* its mount namespace
        (a test host's netns also runs a netcore engine, which is not ours to kill)."""
        holder = getattr(self, "holder", None)
        if holder is None:
            return list(infra_processes(self.netns, any_pidns=True)) if self.own_netns else []
        try:
            mnt = os.stat(f"/proc/{holder.pid}/ns/mnt").st_ino
        except OSError:
            return []
        out = []
        for pid in infra_processes(self.netns, any_pidns=True):
            try:
                if pid != holder.pid and os.stat(f"/proc/{pid}/ns/mnt").st_ino == mnt:
                    out.append(pid)
            except OSError:
                pass
        return out

    def stop(self) -> None:
        """Containers, networks and dockerd go; then every process left in its netns; then its dirs."""
        if self.proc is not None:
            ids = self("ps", "-aq", check=False).stdout.split()
            if ids:
                self("rm", "-f", *ids, check=False)
            self("network", "prune", "-f", check=False)
            self._stop_daemon()
        if self._made_netns and os.path.exists(self.netns_path):
            kill_pids(self._own_processes())
            try:
                ids = os.listdir(f"{self.data}/containers")
            except OSError:
                ids = []
            kill_pids(cgroup_members([f"docker/{i}" for i in ids]))
            time.sleep(0.2)
            if self.own_netns:
                subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        if getattr(self, "holder", None) is not None:
            self.holder.kill()
            self.holder.wait()
            self.holder = None
        for d in (self.exec_root, self.data):
            shutil.rmtree(d, ignore_errors=True)
        for f in (self.sock, self.pidfile):
            if os.path.exists(f):
                os.unlink(f)
        for hier in os.listdir("/sys/fs/cgroup"):  # the empty parent cgroup dockerd made
            try:
                os.rmdir(f"/sys/fs/cgroup/{hier}/docker")
            except OSError:
                pass
