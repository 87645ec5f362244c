"""A cluster on one machine: hosts are network namespaces on an underlay bridge, one etcd.

``Lab(tmp, n)`` makes an underlay bridge ``nctb<id>`` in the test's own namespace with
a /24 of its own, an etcd listening on the bridge's address, and ``n`` hosts: netns
``nct-<id>-h<i>`` joined to the bridge by a veth (``nct<id>h<i>`` on the bridge side,
``eth0`` inside, address ``.i``), each running its own engine (own root dir and API
socket) with ``--cluster-store`` and ``--cluster-advertise``. The CLI reaches each
engine through its socket. ``close()`` resets and stops every engine and removes all.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/etcd_server.py

from cli_engine import Engine, free_subnet  # noqa: E402
from etcd_server import start_etcd  # noqa: E402


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Host:
    name: str  # netns name
    ip: str  # its underlay address, advertised to the cluster
    veth: str  # the bridge side of its underlay link (in the test's namespace)
    engine: Engine

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def __call__(self, *args: str, **kw):
        return self.engine(*args, **kw)

    def json(self, *args: str):
        return self.engine.json(*args)

    def run_in(self, *argv: str, **kw) -> subprocess.CompletedProcess:
        """A command in this host's namespace (not in a container)."""
        return subprocess.run(["nsenter", f"--net={self.path}", *argv], capture_output=True, text=True, **kw)


class Lab:
    def __init__(self, tmp: Path, n: int, ttl: int = 3, mtu: int | None = None, engine_args: Any = None) -> None:
        self.id = secrets.token_hex(2)
        self.tmp = tmp
        self.net = ipaddress.ip_network(free_subnet(24))
        addrs = list(self.net.hosts())
        self.bridge = f"nctb{self.id}"
        self.bridge_ip = str(addrs[-1])
        self.hosts: list[Host] = []
        self.etcd = None
        self.ttl = ttl
        self.mtu = mtu  # the underlay's MTU (the kernel's 1500 if None)
        self.engine_args = engine_args  # host dir -> more `netcore daemon` arguments
        try:
            sh("ip", "link", "add", self.bridge, *(("mtu", str(mtu)) if mtu else ()), "type", "bridge")
            sh("ip", "addr", "add", f"{self.bridge_ip}/{self.net.prefixlen}", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            self.etcd = start_etcd(str(tmp / "etcd"), listen_ip=self.bridge_ip)
            for i in range(1, n + 1):
                self._add_host(i, str(addrs[i - 1]))
        except BaseException:
            self.close()
            raise

    def _add_host(self, i: int, ip: str) -> None:
        name, veth = f"nct-{self.id}-h{i}", f"nct{self.id}h{i}"
        d = self.tmp / f"h{i}"
        d.mkdir()
        engine = Engine(
            d,
            netns=f"/run/netns/{name}",
            daemon_args=("--cluster-store", self.etcd.url, "--cluster-advertise", ip, "--cluster-store-opt", f"discovery.ttl={self.ttl}",
                         *(self.engine_args(d) if self.engine_args else ())),
        )
        self.hosts.append(Host(name, ip, veth, engine))  # cleaned up whatever fails below
        sh("ip", "netns", "add", name)
        mtu = ("mtu", str(self.mtu)) if self.mtu else ()
        sh("ip", "link", "add", veth, *mtu, "type", "veth", "peer", "name", "eth0", "netns", name, *mtu)
        sh("ip", "link", "set", veth, "master", self.bridge, "up")
        sh("ip", "-n", name, "addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        engine.start()

    def wait(self, what, timeout: float = 10.0, interval: float = 0.05):
        """Poll ``what()`` until it returns something truthy; that value, or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {getattr(what, '__name__', what)}")
            time.sleep(interval)

    def close(self) -> None:
        for h in self.hosts:
            try:
                if h.engine.proc is None:
                    if not os.path.exists(h.path):
                        continue
                    h.engine.start()
                h.engine("system", "reset", "-f", check=False, timeout=60)
                h.engine.proc.wait(timeout=15)
            except Exception:
                if h.engine.proc is not None:
                    h.engine.proc.kill()
        for h in self.hosts:
            subprocess.run(["ip", "netns", "del", h.name], capture_output=True)
            subprocess.run(["ip", "link", "del", h.veth], capture_output=True)
        if self.etcd is not None:
            self.etcd.stop()
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
