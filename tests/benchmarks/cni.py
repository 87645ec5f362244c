"""The CNI bridge plugin (Debian's containernetworking-plugins) invoked directly: ADD then DEL.

A minimal conflist executor, as a runtime (libcni) would do it: plugins in order on
ADD with ``prevResult`` chained, in reverse on DEL. The conflist holds only ``bridge``
with ``host-local`` IPAM, so the kernel objects match the other rows (veth, bridge port,
address, default route), without masquerade rules. The plugin runs in netns ``ncb-cni``
(its "host"); each sandbox is a fresh ``ncbc-*`` netns made and removed outside the timing.
``NetcoreCni`` is the issue-14 row next to it: netcore's own CNI plugin, exec'd alike.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

from tests.benchmarks.core import Cleanup, in_netns, netns_add, netns_del, run

CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
HOST_NS = "ncb-cni"
STATE = "/run/ncb-cni"

CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "ncbcni",
    "plugins": [{
        "type": "bridge",
        "bridge": "ncbcni0",
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": False,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.203.0.0/16"}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": f"{STATE}/ipam",
        },
    }],
}


def plugin_dir() -> str | None:
    return next((d for d in CNI_DIRS if os.path.exists(f"{d}/bridge")), None)


class Cni:
    """ADD+DEL of one sandbox, timed end to end (plugin exec included, as a runtime pays it)."""

    name = "cni-bridge"

    def __init__(self) -> None:
        self.dir = plugin_dir()
        self.version = ""

    def available(self) -> str | None:
        return None if self.dir else "CNI plugins not installed (containernetworking-plugins)"

    def start(self, cleanup: Cleanup) -> None:
        netns_add(HOST_NS)
        cleanup.push("netns " + HOST_NS, lambda: netns_del(HOST_NS))
        os.makedirs(STATE, exist_ok=True)
        cleanup.push("cni state", lambda: shutil.rmtree(STATE, ignore_errors=True))
        out = run([f"{self.dir}/bridge"], check=False, env={"CNI_COMMAND": "VERSION"}, input="{}")
        self.version = "CNI plugins " + (out.stderr.strip().split(" ")[-1] if "version" in out.stderr.lower() else "?")
        try:
            self.version = "CNI bridge " + (run(["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"]).stdout)
        except Exception:
            pass

    def _exec(self, command: str, sandbox_ns: str, conf: dict, container_id: str) -> dict:
        env = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": f"/run/netns/{sandbox_ns}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": self.dir or "",
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }
        out = run(in_netns(HOST_NS, [f"{self.dir}/{conf['type']}"]), env=env, input=json.dumps(conf))
        return json.loads(out.stdout) if out.stdout.strip() else {}

    def add_del_ms(self, rep: int) -> float:
        """One sandbox: ADD (chained) then DEL (reversed); the netns itself is not timed."""
        sandbox = f"ncbc-{os.getpid() % 10000}-{rep}"
        netns_add(sandbox)
        try:
            cid = f"ncb{rep:08d}"
            t0 = time.perf_counter()
            prev: dict | None = None
            plugins = CONFLIST["plugins"]
            for p in plugins:
                conf = {**p, "name": CONFLIST["name"], "cniVersion": CONFLIST["cniVersion"]}
                if prev is not None:
                    conf["prevResult"] = prev
                prev = self._exec("ADD", sandbox, conf, cid)
            for p in reversed(plugins):
                conf = {**p, "name": CONFLIST["name"], "cniVersion": CONFLIST["cniVersion"], "prevResult": prev}
                self._exec("DEL", sandbox, conf, cid)
            return (time.perf_counter() - t0) * 1000
        finally:
            netns_del(sandbox)


class NetcoreCni:
    """``netcore-cni`` (issue 14) exec'd the same way as the bridge plugin above: ADD then DEL
    of a fresh netns, plugin exec included, under the same ``nsenter`` into the "host"
    netns, against the netcore peer's engine (which runs there) on a bridge network of
    its own. Its result is the runtime's; only the netns is made outside the timing."""

    name = "netcore-cni"
    NETWORK = "ncbcni"

    def __init__(self, netcore: Any) -> None:
        self.netcore = netcore  # the started netcore peer (its engine, netns and CLI)
        self.bin = os.path.join(os.path.dirname(netcore.bin), "netcore-cni")
        self.conf: dict = {}

    def available(self) -> str | None:
        return None if os.path.exists(self.bin) else f"netcore-cni not installed next to {self.netcore.bin}"

    def start(self, cleanup: Cleanup) -> None:
        cli = self.netcore.cli
        run(cli("network", "create", "--subnet", "10.204.0.0/16", self.NETWORK))
        cleanup.push("network " + self.NETWORK, lambda: run(cli("network", "rm", self.NETWORK), check=False))
        lst = json.loads(run(cli("network", "cni-config", self.NETWORK)).stdout)
        self.conf = {**lst["plugins"][0], "cniVersion": lst["cniVersion"], "name": lst["name"]}

    def _exec(self, command: str, sandbox_ns: str, container_id: str) -> str:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": f"/run/netns/{sandbox_ns}",
               "CNI_IFNAME": "eth0", "CNI_PATH": os.path.dirname(self.bin), "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        return run(in_netns(self.netcore.netns, [self.bin]), env=env, input=json.dumps(self.conf)).stdout

    def add_del_ms(self, rep: int) -> tuple[float, float, float]:
        """(ADD+DEL, ADD, DEL) in ms for one sandbox."""
        sandbox = f"ncbn-{os.getpid() % 10000}-{rep}"
        netns_add(sandbox)
        try:
            cid = f"ncbn{rep:08d}"
            t0 = time.perf_counter()
            self._exec("ADD", sandbox, cid)
            t1 = time.perf_counter()
            self._exec("DEL", sandbox, cid)
            t2 = time.perf_counter()
            return (t2 - t0) * 1000, (t1 - t0) * 1000, (t2 - t1) * 1000
        finally:
            netns_del(sandbox)

    def exec_floor_ms(self) -> float:
        """The plugin's own start: VERSION, which asks nothing of the engine."""
        t0 = time.perf_counter()
        run(in_netns(self.netcore.netns, [self.bin]), env={"CNI_COMMAND": "VERSION"}, input='{"cniVersion":"1.0.0"}')
        return (time.perf_counter() - t0) * 1000
