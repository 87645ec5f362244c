"""netcore: the engine (``netcore daemon``) in netns ``ncb-netcore``, driven by its CLI.

The engine gets its own root dir and socket so it never meets an engineer's engine,
and the CLI runs on the host like Docker's CLI does (it only talks to the socket).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

from tests.benchmarks.core import BenchError, Cleanup, in_netns, infra_processes, kill_pids, netns_add, netns_del, run
from tests.benchmarks.peer import Peer, Unavailable

ROOT = "/var/lib/ncb-netcore"
SOCK = "/run/ncb-netcore.sock"


def netcore_bin() -> str:
    """The CLI next to the running interpreter (the venv's), else the one on PATH."""
    cand = os.path.join(os.path.dirname(sys.executable), "netcore")
    return cand if os.path.exists(cand) else (shutil.which("netcore") or "netcore")


def compile_bytecode() -> None:
    """Write netcore's .pyc files, as pip does when it installs a package.

    An engineer's shell may say PYTHONDONTWRITEBYTECODE (ours did): the editable install
    then compiles every module of the CLI from source on every command, ~10 ms that no
    user pays. py_compile writes the files whatever that variable says.
    """
    import compileall

    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for package in ("netcore", "drivers", "runtime"):
        compileall.compile_dir(os.path.join(here, package), quiet=1)


class Netcore(Peer):
    name = "netcore"
    netns = "ncb-netcore"
    run_image = ("--",)

    def __init__(self) -> None:
        super().__init__()
        self.bin = netcore_bin()
        self.proc: subprocess.Popen | None = None

    def start(self, cleanup: Cleanup) -> None:
        if not os.path.exists(self.bin):
            raise Unavailable(f"netcore CLI not found at {self.bin}: run scripts/setup.sh")
        compile_bytecode()
        self.version = run([self.bin, "--version"]).stdout.strip()
        netns_add(self.netns)
        cleanup.push("netns " + self.netns, lambda: netns_del(self.netns))
        shutil.rmtree(ROOT, ignore_errors=True)
        os.makedirs(ROOT)
        cleanup.push("root " + ROOT, lambda: shutil.rmtree(ROOT, ignore_errors=True))
        log = open(os.path.join("/tmp", "ncb-netcore-engine.log"), "ab")
        self.proc = subprocess.Popen(
            in_netns(self.netns, [self.bin, "daemon", "--root", ROOT, "--socket", SOCK]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=dict(os.environ, PYTHONFAULTHANDLER="1"),  # a crash leaves a traceback in the log
        )
        log.close()
        cleanup.push("netcore engine", self.stop)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(SOCK)
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise Unavailable("netcore engine exited at start; see /tmp/ncb-netcore-engine.log")
                time.sleep(0.05)
        else:
            raise Unavailable("netcore engine did not answer within 20 s")
        self.daemon_pids = [self.proc.pid]  # nsenter execs, so this is the engine itself

    def stop(self) -> None:
        """``system reset -f`` removes every container, network and the nft table, and stops the engine."""
        if self.proc is None:
            return
        try:
            run(self.cli("system", "reset", "-f"), check=False, timeout=300)
        except BenchError as exc:
            self.notes.append(f"netcore cleanup hung ({exc}); killed its containers")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        try:
            os.unlink(SOCK)
        except FileNotFoundError:
            pass
        self._sweep()

    def _sweep(self) -> None:
        """After a failed reset: containers outlive their engine by design, so kill the processes
        in this engine's sandboxes (netns ``nc-<its tag>-*``, nobody else's) and remove those."""
        import hashlib

        tag = hashlib.sha256(ROOT.rstrip("/").encode()).hexdigest()[:6]  # = netcore.names.engine_tag
        left = [n for n in os.listdir("/run/netns") if n.startswith(f"nc-{tag}-")] if os.path.isdir("/run/netns") else []
        for name in left:
            kill_pids(infra_processes(name, any_pidns=True))  # monitor shell and container
            run(["ip", "netns", "del", name], check=False)
        if left:
            self.notes.append(f"removed {len(left)} sandbox netns left by the engine")

    def cli(self, *args: str) -> list[str]:
        """The CLI runs in the engine's netns with the engine's root: were the engine gone, the
        CLI's start-on-demand would otherwise start a default-root engine in the host netns."""
        return in_netns(self.netns, [self.bin, "-H", f"unix://{SOCK}", "--root", ROOT, *args])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
