"""Where netcore's CLI time goes (diagnostic, netcore only): interpreter start, CLI imports,
and the engine's own time through the API from a warm client in this process.

CLI time ≈ interpreter + imports + API round trip; the gap between a CLI row and its
API row below is what a faster client would save, the API row is the engine's share.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tests.benchmarks.core import Stats, run, timed
from tests.benchmarks.netcore_peer import SOCK, Netcore


def measure(peer: Netcore, reps: int) -> dict[str, Any]:
    from runtime.api.client import Client

    client = Client(f"unix://{SOCK}", autostart=False)
    s: dict[str, list[float]] = {}

    def api(key: str, fn) -> Any:
        t0 = time.perf_counter()
        out = fn()
        s.setdefault(key, []).append((time.perf_counter() - t0) * 1000)
        return out

    def run_rm(net: str) -> None:
        created = client.request("POST", "/containers/run", {"Cmd": ["true"], "Networks": [{"name": net}], "AutoRemove": True})
        client.request("POST", f"/containers/{created['Id']}/wait", timeout=None)

    python = sys.executable
    # a running container to connect to and disconnect from a second network
    client.request("POST", "/networks/create", {"Name": "ncbapiconn", "IPAM": {"Config": [{"Subnet": "10.235.0.0/24"}]}})
    sleeper = client.request("POST", "/containers/run", {"Cmd": ["sleep", "3600"], "Networks": [{"name": "ncbrun"}]})["Id"]
    try:
        for rep in range(reps):
            s.setdefault("python -c pass", []).append(timed([python, "-c", "pass"]))
            s.setdefault("python -S -c pass", []).append(timed([python, "-S", "-c", "pass"]))
            s.setdefault("netcore --version (CLI imports, no engine)", []).append(timed(peer.cli("--version")))
            api("API GET /networks", lambda: client.request("GET", "/networks"))
            api("API network create", lambda: client.request("POST", "/networks/create",
                                                            {"Name": "ncbapi", "IPAM": {"Config": [{"Subnet": "10.234.0.0/24"}]}}))
            api("API network rm", lambda: client.request("DELETE", "/networks/ncbapi"))
            api("API run --rm bridge (run + wait)", lambda: run_rm("ncbrun"))
            api("API run --rm none (run + wait)", lambda: run_rm("none"))
            api("API network connect (running container)",
                lambda: client.request("POST", "/networks/ncbapiconn/connect", {"Container": sleeper}))
            api("API network disconnect", lambda: client.request("POST", "/networks/ncbapiconn/disconnect", {"Container": sleeper}))
    finally:
        client.request("DELETE", f"/containers/{sleeper}", query={"force": "1"})
        client.request("DELETE", "/networks/ncbapiconn")
    out = {k: Stats.of(v).as_dict() for k, v in s.items()}
    imports = run([python, "-X", "importtime", "-c", "import runtime.cli"], check=False).stderr
    top = []
    for line in imports.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            top.append((int(parts[1]), parts[2].rstrip()))
    out["import_cumulative_us_top"] = sorted(top, reverse=True)[:12]
    return out
