"""BIRD 2 for routing=bgp: one daemon per engine, its config and control socket under the engine's root.

The driver runs no program itself: the daemon is started and ended through the OS
layer's process verbs (``netcore.osl.daemons``), and reloads, config checks and session
state go over BIRD's control socket in its own protocol (``netcore.osl.birdctl``). The
config is a pure function of (router id, this host's blocks, the routed pools, the
peers), so it is unit-tested; BIRD runs in the engine's network namespace.

iBGP full mesh, AS 64512 (Calico's default): one ``protocol bgp`` per other cluster
node. BIRD exports only this host's blocks (a ``static`` protocol of blackholes, never
put in the kernel: the driver keeps its own blackholes), accepts from peers only
prefixes inside routed pools, and installs what it learned in the kernel
(``proto bird``). ``protocol direct`` puts the underlay's connected prefix in BIRD's
table so iBGP next hops resolve.

BIRD outlives an engine restart (like the containers): a restarted engine adopts it by
its pid file; ``stop`` (last bgp network gone, ``system reset``) ends it, and BIRD
withdraws its kernel routes as it exits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from netcore import KernelError
from netcore.osl import daemons
from netcore.osl.birdctl import BirdControl

__all__ = ["ASN", "render", "Bird", "peer_name"]

ASN = 64512
BIRD = "/usr/sbin/bird"


def peer_name(address: str) -> str:
    return "peer_" + address.replace(".", "_")


def render(router_id: str, blocks: list[str], pools: list[tuple[str, int]], peers: list[str], log: str, asn: int = ASN) -> str:
    """The whole bird.conf. ``pools``: (subnet, block size) of every bgp routed network."""
    lines = [
        "# written by netcore's routed driver: do not edit",
        f'log "{log}" all;',
        f"router id {router_id};",
        "timeformat protocol iso short;",
        "protocol device { scan time 10; }",
        'protocol direct { ipv4; interface -"ncve-*", "*"; }',
        "protocol kernel {",
        "  ipv4 { import none; export where source = RTS_BGP; };",
        "  merge paths on;",
        "}",
        "protocol static blocks {",
        "  ipv4;",
        *(f"  route {b} blackhole;" for b in sorted(blocks)),
        "}",
    ]
    if pools:
        pattern = ", ".join(f"{s}{{{int(s.split('/')[1])},32}}" for s, _ in sorted(pools))
        lines += ["filter routed_pools {", f"  if net ~ [ {pattern} ] then accept;", "  reject;", "}"]
        imp = "import filter routed_pools;"
    else:
        imp = "import none;"
    lines += [
        "template bgp mesh {",
        f"  local {router_id} as {asn};",
        "  connect delay time 1; connect retry time 2; error wait time 1, 10;",
        f'  ipv4 {{ {imp} export where proto = "blocks"; next hop self; }};',
        "}",
    ]
    for p in sorted(peers):
        if p != router_id:
            lines.append(f"protocol bgp {peer_name(p)} from mesh {{ neighbor {p} as {asn}; }}")
    return "\n".join(lines) + "\n"


@dataclass
class Bird:
    directory: str  # <engine root>/routed

    @property
    def conf(self) -> str:
        return os.path.join(self.directory, "bird.conf")

    @property
    def ctl(self) -> str:
        return os.path.join(self.directory, "bird.ctl")

    @property
    def pidfile(self) -> str:
        return os.path.join(self.directory, "bird.pid")

    @property
    def log(self) -> str:
        return os.path.join(self.directory, "bird.log")

    def control(self) -> BirdControl:
        return BirdControl(self.ctl)

    def pid(self) -> int | None:
        """The pid of this engine's BIRD if it runs (checked against its command line)."""
        return daemons.pid_from_file(self.pidfile, "bird", self.conf)

    def running(self) -> bool:
        return self.pid() is not None

    def apply(self, text: str) -> None:
        """Write the config; start BIRD, or make the running one reload it if it changed.

        A config BIRD refuses changes nothing: the running BIRD checks it first
        (``configure check``), a BIRD that is not running refuses to start with it.
        """
        os.makedirs(self.directory, exist_ok=True)
        old = Path(self.conf).read_text() if os.path.exists(self.conf) else None
        running = self.running()
        if old != text:
            tmp = self.conf + ".new"
            Path(tmp).write_text(text)
            if running:
                try:
                    self.control().configure(tmp, check=True)
                except KernelError as exc:
                    os.unlink(tmp)
                    raise KernelError("bird", "config", exc.cause) from None
            os.replace(tmp, self.conf)
        if not running:
            try:
                self._start()
            except KernelError:
                self._restore(old)
                raise
        elif old != text:
            out = self.control().configure()
            if "Reconfigur" not in out:
                raise KernelError("bird", "configure", out.strip())

    def _restore(self, old: str | None) -> None:
        if old is None:
            self._unlink(self.conf)
        else:
            Path(self.conf).write_text(old)

    def _start(self) -> None:
        self._unlink(self.ctl, self.pidfile)
        try:
            # BIRD daemonizes once the config is read: its exit status is the config's verdict
            daemons.spawn([BIRD, "-c", self.conf, "-s", self.ctl, "-P", self.pidfile], self.log + ".start")
            daemons.wait_until(lambda: os.path.exists(self.ctl) and self.running(), 10, f"bird: no control socket {self.ctl}")
        except KernelError:
            pid = self.pid()  # one that started but never answered: end it, leave nothing running
            if pid is not None:
                daemons.terminate(pid)
            self._unlink(self.ctl, self.pidfile)  # a BIRD that refused its config leaves both behind
            raise

    @staticmethod
    def _unlink(*paths: str) -> None:
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def stop(self) -> None:
        """End BIRD (``down`` on its socket, signals if it does not answer) and remove its files."""
        pid = self.pid()
        if pid is not None:
            try:
                self.control().down()
                asked = True
            except KernelError:
                asked = False
            daemons.terminate(pid, asked=asked)
        self._unlink(self.ctl, self.pidfile, self.conf)

    def sessions(self) -> dict[str, dict[str, str]]:
        """Each BGP peer's session: {address: {"state": up/start/..., "info": "Established"/...}}."""
        if not self.running():
            return {}
        return {
            row["name"][5:].replace("_", "."): {"state": row["state"], "info": row["info"]}
            for row in self.control().protocols()
            if row["name"].startswith("peer_") and row["proto"] == "BGP"
        }
