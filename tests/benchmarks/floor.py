"""The kernel floor: the same kernel objects a container's bridge endpoint needs, made with
``ip -batch`` and removed again, with no framework around them.

Objects: a netns (``full`` variant only), a veth pair with one end in it, that end's
address and default route, the other end as a port of a bridge. The bridge lives in
netns ``ncb-floor`` (the floor's "host"). Two ``ip`` processes set up (host side,
then ``ip -n`` inside the sandbox: ``ip -batch`` has no per-line netns switch) and one
tears down, so the floor includes about three fork/execs of ``ip``.
"""

from __future__ import annotations

import os
import time

from tests.benchmarks.core import Cleanup, in_netns, netns_add, netns_del, run

HOST_NS = "ncb-floor"
BRIDGE = "ncbfbr0"


class KernelFloor:
    name = "kernel floor"

    def __init__(self) -> None:
        self.version = ""

    def start(self, cleanup: Cleanup) -> None:
        netns_add(HOST_NS)
        cleanup.push("netns " + HOST_NS, lambda: netns_del(HOST_NS))
        run(in_netns(HOST_NS, ["ip", "-batch", "-"]), input=(
            f"link add {BRIDGE} type bridge\naddr add 10.204.0.1/16 dev {BRIDGE}\nlink set {BRIDGE} up\n"))
        self.version = run(["ip", "-V"]).stdout.strip()

    def _names(self, rep: int) -> tuple[str, str, str]:
        k = f"{os.getpid() % 1000}-{rep}"
        return f"ncbf-{k}", f"ncbfv{os.getpid() % 1000}x{rep}"[:15], f"10.204.{1 + rep // 250 % 250}.{1 + rep % 250}/16"

    def _setup(self, ns: str, veth: str, addr: str, make_ns: bool) -> None:
        host = (f"netns add {ns}\n" if make_ns else "") + (
            f"link add {veth} type veth peer name eth0 netns {ns}\nlink set {veth} master {BRIDGE} up\n")
        run(in_netns(HOST_NS, ["ip", "-batch", "-"]), input=host)
        inner = ("link set lo up\n" if make_ns else "") + (
            f"addr add {addr} dev eth0\nlink set eth0 up\nroute add default via 10.204.0.1\n")
        run(["ip", "-n", ns, "-batch", "-"], input=inner)

    def full_ms(self, rep: int) -> float:
        """netns + endpoint, set up and torn down."""
        ns, veth, addr = self._names(rep)
        t0 = time.perf_counter()
        try:
            self._setup(ns, veth, addr, make_ns=True)
            run(in_netns(HOST_NS, ["ip", "-batch", "-"]), input=f"link del {veth}\nnetns del {ns}\n")
            return (time.perf_counter() - t0) * 1000
        finally:
            netns_del(ns) if os.path.exists(f"/run/netns/{ns}") else None

    def endpoint_ms(self, rep: int) -> float:
        """The endpoint alone on an existing netns (the part ``bridge minus none`` measures)."""
        ns, veth, addr = self._names(rep)
        netns_add(ns)
        try:
            t0 = time.perf_counter()
            self._setup(ns, veth, addr, make_ns=False)
            run(in_netns(HOST_NS, ["ip", "link", "del", veth]))
            return (time.perf_counter() - t0) * 1000
        finally:
            netns_del(ns)
