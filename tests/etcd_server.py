"""A private etcd for tests: its own data dir, free ports, never left running.

    srv = start_etcd(str(tmp_path / "etcd"))
    srv.url        # "etcd://127.0.0.1:PORT"
    srv.kill()     # SIGKILL: an outage
    srv.restart()  # same data dir, same ports
    srv.stop()

The process gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the test process even if
that is killed; ``stop`` runs at interpreter exit for any server still up. The
``ETCD_*`` environment (Debian's service config) is not passed on, and the system's
etcd service on 127.0.0.1:2379, if any, is never used.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import subprocess
import time
import urllib.request

from reserve import free_port

ETCD = "/usr/bin/etcd"
_PR_SET_PDEATHSIG = 1
_running: set[EtcdServer] = set()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class EtcdServer:
    def __init__(self, data_dir: str, ip: str, client_port: int, peer_port: int) -> None:
        self.data_dir, self.ip = data_dir, ip
        self.client_port, self.peer_port = client_port, peer_port
        self.url = f"etcd://{ip}:{client_port}"
        self.log_path = data_dir.rstrip("/") + ".log"
        self.proc: subprocess.Popen | None = None

    def _argv(self) -> list[str]:
        client, peer = f"http://{self.ip}:{self.client_port}", f"http://{self.ip}:{self.peer_port}"
        return [
            ETCD,
            "--name", "nctest",
            "--data-dir", self.data_dir,
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"nctest={peer}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-level", "warn",
        ]

    def _launch(self, wait: float = 20.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, preexec_fn=_die_with_parent,
            )
        _running.add(self)
        try:
            self._wait_healthy(wait)
        except BaseException:
            self.kill()
            raise

    def _wait_healthy(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        url = f"http://{self.ip}:{self.client_port}/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                with opener.open(url, timeout=1) as resp:
                    if json.loads(resp.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd at {self.url} not healthy after {wait:g}s:\n{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, no clean shutdown (an outage)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        _running.discard(self)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self) -> None:
        """Stop if running, start again on the same data dir and ports, wait until healthy."""
        self.stop()
        self._launch()


def start_etcd(data_dir: str, listen_ip: str = "127.0.0.1") -> EtcdServer:
    """Start a single-member etcd on free ports of ``listen_ip``; returns once it is healthy."""
    if not os.access(ETCD, os.X_OK):
        raise FileNotFoundError(f"{ETCD} is missing (apt-get install etcd-server)")
    os.makedirs(os.path.dirname(data_dir.rstrip("/")) or ".", exist_ok=True)
    last: Exception | None = None
    for _ in range(3):  # a free port can be taken between probe and bind: try again
        srv = EtcdServer(data_dir, listen_ip, free_port(listen_ip), free_port(listen_ip))
        try:
            srv._launch()
            return srv
        except RuntimeError as exc:
            last = exc
            if "address already in use" not in str(exc):
                raise
    raise RuntimeError(f"could not start etcd: {last}")


@atexit.register
def _stop_all() -> None:
    for srv in list(_running):
        srv.kill()
