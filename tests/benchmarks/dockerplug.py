"""Docker Engine on netcore's bridge driver (``netcore daemon --docker-plugins``) versus
Docker's own bridge, side by side in one run, and the plugin's own time per endpoint.

One dockerd (Debian's docker.io) and one netcore engine share a netns, as on a host
(tests/docker_host.py). Interleaved, ``--reps`` times each:
- ``docker run --rm --network NET IMAGE true`` on a ``netcore-bridge`` network and on a
  Docker ``bridge`` network (end to end, the CLI's wall time);
- ``docker network create -d netcore-bridge`` + ``rm`` versus ``-d bridge``.
Then ``--endpoints`` times the four calls dockerd makes per container (CreateEndpoint,
Join, Leave, DeleteEndpoint) straight on the plugin's socket, as dockerd would send them
(one kept-alive connection), and the kernel's floor for the same work (a veth pair on a
bridge created and deleted through netcore's OS layer): the plugin's own overhead is
the difference.

    .venv/bin/python -m tests.benchmarks.dockerplug [--reps 10] [--endpoints 50]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/docker_host.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))  # cli_engine.py

from cli_engine import Engine  # noqa: E402
from docker_host import IMAGE, DockerHost, available  # noqa: E402

from drivers.remote.client import PluginClient  # noqa: E402
from drivers.remote.discovery import Location  # noqa: E402


def _ms(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def _stats(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {"median": round(statistics.median(s), 2), "p90": round(s[int(0.9 * (len(s) - 1))], 2), "min": round(s[0], 2), "n": len(s)}


def measure(reps: int = 10, endpoints: int = 50) -> dict[str, Any]:
    why = available()
    if why:
        raise SystemExit(f"cannot run: {why}")
    with tempfile.TemporaryDirectory(prefix="ncb-dockerplug-") as tmp:
        docker = DockerHost(f"{tmp}/plugins")
        docker.setup_netns()
        (Path(tmp) / "nc").mkdir()
        eng = Engine(Path(tmp) / "nc", daemon_args=("--docker-plugins", "--docker-plugins-dir", docker.plugins_dir), netns=docker.netns_path)
        try:
            eng.start()
            docker.start()
            docker("network", "create", "-d", "netcore-bridge", "ncbnet")
            docker("network", "create", "-d", "bridge", "dkbnet")
            for net in ("ncbnet", "dkbnet"):  # warm up: image layers, first activation
                docker("run", "--rm", "--network", net, IMAGE, "true")
            run = {"netcore-bridge": [], "docker-bridge": []}
            create = {"netcore-bridge": [], "docker-bridge": []}
            for i in range(reps):
                order = [("netcore-bridge", "ncbnet"), ("docker-bridge", "dkbnet")]
                for label, net in (order if i % 2 == 0 else order[::-1]):
                    run[label].append(_ms(lambda: docker("run", "--rm", "--network", net, IMAGE, "true")))
                for label, drv in ((("netcore-bridge", "netcore-bridge"), ("docker-bridge", "bridge")) if i % 2 == 0
                                   else (("docker-bridge", "bridge"), ("netcore-bridge", "netcore-bridge"))):
                    name = f"b{secrets.token_hex(3)}"
                    create[label].append(_ms(lambda: (docker("network", "create", "-d", drv, name), docker("network", "rm", name))))
            per_endpoint = _endpoint_calls(docker, endpoints)
            floor = _veth_floor(docker, endpoints)
            out: dict[str, Any] = {
                "docker": docker("version", "--format", "{{.Server.Version}}").stdout.strip(),
                "reps": reps,
                "docker_run_rm_ms": {k: _stats(v) for k, v in run.items()},
                "network_create_rm_ms": {k: _stats(v) for k, v in create.items()},
                "plugin_per_endpoint_ms": per_endpoint,
                "kernel_veth_floor_ms": floor,
            }
            out["plugin_overhead_per_endpoint_ms"] = round(per_endpoint["total"]["median"] - floor["create"]["median"] - floor["delete"]["median"], 2)
            out["ratio_run_rm"] = round(out["docker_run_rm_ms"]["netcore-bridge"]["median"] / out["docker_run_rm_ms"]["docker-bridge"]["median"], 2)
            out["ratio_create_rm"] = round(out["network_create_rm_ms"]["netcore-bridge"]["median"] / out["network_create_rm_ms"]["docker-bridge"]["median"], 2)
            return out
        finally:
            docker.stop()
            eng.stop()


def _endpoint_calls(docker: DockerHost, n: int) -> dict[str, Any]:
    """The four per-container calls on the plugin's socket, against a network dockerd made."""
    nid = docker("network", "inspect", "-f", "{{.Id}}", "ncbnet").stdout.strip()
    subnet = ipaddress.IPv4Network(docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "ncbnet").stdout.strip())
    client = PluginClient(Location("netcore-bridge", "unix", f"{docker.plugins_dir}/netcore-bridge.sock"))
    calls: dict[str, list[float]] = {"CreateEndpoint": [], "Join": [], "Leave": [], "DeleteEndpoint": [], "total": []}
    hosts = subnet.hosts()
    for _ in range(200):  # past the addresses dockerd handed out
        next(hosts)
    for _ in range(n):
        eid = secrets.token_hex(32)
        addr = f"{next(hosts)}/{subnet.prefixlen}"
        ids = {"NetworkID": nid, "EndpointID": eid}
        steps = [
            ("CreateEndpoint", {**ids, "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""}, "Options": {}}),
            ("Join", {**ids, "SandboxKey": "/var/run/docker/netns/bench", "Options": {}}),
            ("Leave", ids),
            ("DeleteEndpoint", ids),
        ]
        total = 0.0
        for method, args in steps:
            t = _ms(lambda: client.call("NetworkDriver." + method, args))
            calls[method].append(t)
            total += t
        calls["total"].append(total)
    return {k: _stats(v) for k, v in calls.items()}


def _veth_floor(docker: DockerHost, n: int) -> dict[str, Any]:
    """What the kernel alone costs per endpoint, through the same OS-layer calls the bridge
    driver makes: a veth pair with one end on a bridge, created, then deleted."""
    from netcore.osl import links, netns

    times: dict[str, list[float]] = {"create": [], "delete": []}
    br = f"nctfl{secrets.token_hex(2)}"
    with netns.netlink(docker.netns_path) as ipr:
        index = links.create_bridge(ipr, br, "bench", "02:00:00:00:00:01")
        try:
            for i in range(n):
                host, peer = f"nctfh{i}", f"nctfp{i}"
                times["create"].append(_ms(lambda: links.create_veth(ipr, host, "bench", peer_name=peer, master=index)))
                times["delete"].append(_ms(lambda: links.delete(ipr, host)))
        finally:
            links.delete(ipr, br)
    return {k: _stats(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.dockerplug", description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--endpoints", type=int, default=50)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.reps, args.endpoints), indent=2))


if __name__ == "__main__":
    main()
