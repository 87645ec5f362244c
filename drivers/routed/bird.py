"""BIRD 2 for routing=bgp: one daemon per engine, its config and control socket under the engine's root.

The only place in the driver that runs a program: ``bird`` itself (the daemon) and
``birdc`` on its control socket, for reloads and session state. The config is a pure
function of (router id, this host's blocks, the routed pools, the peers), so it is
unit-tested; BIRD runs in the engine's network namespace (a child of the engine).

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
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from netcore import KernelError

__all__ = ["ASN", "render", "Bird", "peer_name"]

ASN = 64512
BIRD, BIRDC = "/usr/sbin/bird", "/usr/sbin/birdc"


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

    def pid(self) -> int | None:
        """The pid of this engine's BIRD if it runs (checked against its command line)."""
        try:
            pid = int(Path(self.pidfile).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if self.conf.encode() in cmdline and os.path.basename(cmdline[0]) == b"bird" else None

    def running(self) -> bool:
        return self.pid() is not None

    def _birdc(self, *args: str) -> str:
        res = subprocess.run([BIRDC, "-s", self.ctl, *args], capture_output=True, text=True, timeout=10)
        if res.returncode != 0:
            raise KernelError("birdc", " ".join(args), (res.stderr or res.stdout).strip().splitlines()[-1:] or res.returncode)
        return res.stdout

    def apply(self, text: str) -> None:
        """Write the config; start BIRD, or make the running one reload it if it changed."""
        os.makedirs(self.directory, exist_ok=True)
        old = Path(self.conf).read_text() if os.path.exists(self.conf) else None
        if old != text:
            tmp = self.conf + ".new"
            Path(tmp).write_text(text)
            check = subprocess.run([BIRD, "-p", "-c", tmp], capture_output=True, text=True, timeout=10)
            if check.returncode != 0:
                os.unlink(tmp)
                raise KernelError("bird", "config", (check.stderr or check.stdout).strip())
            os.replace(tmp, self.conf)
        if not self.running():
            self._start()
        elif old != text:
            out = self._birdc("configure")
            if "Reconfigured" not in out and "Reconfiguration in progress" not in out and "Reconfiguration" not in out:
                raise KernelError("birdc", "configure", out.strip().splitlines()[-1:])

    def _start(self) -> None:
        for stale in (self.ctl, self.pidfile):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        # daemonizes once the config is read (exit status: the config's verdict); its own session
        # (its output to a file, not a pipe: the daemon would hold a pipe open)
        with open(self.log + ".start", "w+") as out:
            res = subprocess.run([BIRD, "-c", self.conf, "-s", self.ctl, "-P", self.pidfile], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=15, start_new_session=True)
            if res.returncode != 0:
                out.seek(0)
                raise KernelError("bird", "start", out.read().strip() or res.returncode)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.ctl) and self.running()):
            if time.monotonic() > deadline:
                raise KernelError("bird", "start", f"no control socket {self.ctl} after 10 s")
            time.sleep(0.02)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                try:  # reap it if it is our child (started by this engine process)
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.02)
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)
        for path in (self.ctl, self.pidfile, self.conf):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def sessions(self) -> dict[str, dict[str, str]]:
        """Each BGP peer's session: {address: {"state": up/start/..., "info": "Established"/...}}."""
        if not self.running():
            return {}
        out: dict[str, dict[str, str]] = {}
        for line in self._birdc("show", "protocols").splitlines():
            parts = line.split(None, 5)
            if len(parts) >= 5 and parts[0].startswith("peer_") and parts[1] == "BGP":
                out[parts[0][5:].replace("_", ".")] = {"state": parts[3], "info": parts[5].strip() if len(parts) > 5 else ""}
        return out
