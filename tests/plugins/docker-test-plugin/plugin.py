#!/usr/bin/env python3
"""A small Docker network + IPAM plugin, written from Docker's docs alone: no netcore code.

It is what a third party would ship: the remote driver protocol on a unix socket, a
Linux bridge per network and a veth pair per endpoint made with ``ip`` (its peer left
in the host namespace for the caller to move, as the protocol says), and a simple IPAM.
State is in memory. ``--fault`` makes it misbehave, for the tests of netcore's client:
``garbage`` (answers that are not JSON), ``err`` (CreateNetwork answers 500 {"Err"}),
``hang`` (CreateNetwork never answers), ``no-ipam`` (its manifest lists no IpamDriver).

    plugin.py --socket /run/docker/plugins/NAME.sock --pool-base 10.77.0.0/16 [--fault F]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler


def ip(*args: str, check: bool = True) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


class State:
    def __init__(self, pool_base: str) -> None:
        self.lock = threading.Lock()
        self.networks: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.pools: dict[str, dict] = {}  # PoolID -> {"net": str, "used": set}
        self.free = list(ipaddress.ip_network(pool_base).subnets(new_prefix=24))
        self.calls: list[str] = []


def bridge_of(nid: str) -> str:
    return "nctpb" + nid[:8]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    state: State
    fault: str

    def log_message(self, fmt: str, *args) -> None:
        pass

    def reply(self, code: int, body: object | bytes) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1.1+json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        method = self.path.lstrip("/")
        self.state.calls.append(method)
        try:
            args = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self.reply(400, {"Err": "bad JSON"})
        if method == "Plugin.Activate":
            kinds = ["NetworkDriver"] if self.fault == "no-ipam" else ["NetworkDriver", "IpamDriver"]
            return self.reply(200, {"Implements": kinds})
        if self.fault == "garbage":
            return self.reply(200, b"<html>this is not JSON</html>")
        if self.fault == "hang" and method == "NetworkDriver.CreateNetwork":
            time.sleep(3600)
        if self.fault == "err" and method == "NetworkDriver.CreateNetwork":
            return self.reply(500, {"Err": "the test plugin refuses this network"})
        fn = HANDLERS.get(method)
        if fn is None:
            return self.reply(404, {"Err": f"unknown method {method}"})
        try:
            with self.state.lock:
                out = fn(self.state, args)
        except Exception as exc:
            return self.reply(500, {"Err": str(exc)})
        self.reply(200, out)


def caps(st: State, a: dict) -> dict:
    return {"Scope": "local", "ConnectivityScope": "local"}


def create_network(st: State, a: dict) -> dict:
    nid = a["NetworkID"]
    v4 = (a.get("IPv4Data") or [{}])[0]
    br = bridge_of(nid)
    ip("link", "add", br, "type", "bridge")
    if v4.get("Gateway"):
        ip("addr", "add", v4["Gateway"], "dev", br)
    ip("link", "set", br, "up")
    st.networks[nid] = {"gateway": (v4.get("Gateway") or "").split("/")[0], "options": a.get("Options") or {}}
    return {}


def delete_network(st: State, a: dict) -> dict:
    st.networks.pop(a["NetworkID"], None)
    ip("link", "del", bridge_of(a["NetworkID"]), check=False)
    return {}


def create_endpoint(st: State, a: dict) -> dict:
    if a["NetworkID"] not in st.networks:
        raise RuntimeError(f"no such network {a['NetworkID'][:12]}")
    st.endpoints[a["EndpointID"]] = {"network": a["NetworkID"], "address": a["Interface"].get("Address")}
    if not a["Interface"].get("MacAddress"):
        return {"Interface": {"MacAddress": "0a:58:00:00:00:" + a["EndpointID"][:2]}}
    return {}


def delete_endpoint(st: State, a: dict) -> dict:
    st.endpoints.pop(a["EndpointID"], None)
    ip("link", "del", "nctph" + a["EndpointID"][:8], check=False)
    return {}


def join(st: State, a: dict) -> dict:
    eid, nid = a["EndpointID"], a["NetworkID"]
    host, peer = "nctph" + eid[:8], "nctpc" + eid[:8]
    ip("link", "add", host, "type", "veth", "peer", "name", peer)
    ip("link", "set", host, "master", bridge_of(nid), "up")
    out = {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"}, "StaticRoutes": [], "DisableGatewayService": True}
    gw = st.networks[nid]["gateway"]
    if gw:
        out["Gateway"] = gw
    return out


def leave(st: State, a: dict) -> dict:
    ip("link", "del", "nctph" + a["EndpointID"][:8], check=False)
    return {}


def oper_info(st: State, a: dict) -> dict:
    return {"Value": {"plugin": "docker-test-plugin", "host_interface": "nctph" + a["EndpointID"][:8]}}


def ipam_caps(st: State, a: dict) -> dict:
    return {"RequiresMACAddress": False}


def spaces(st: State, a: dict) -> dict:
    return {"LocalDefaultAddressSpace": "tp-local", "GlobalDefaultAddressSpace": "tp-global"}


def request_pool(st: State, a: dict) -> dict:
    if a.get("V6"):
        raise RuntimeError("IPv6 is not supported")
    if a.get("Pool"):
        net = ipaddress.ip_network(a["Pool"])
    else:
        if not st.free:
            raise RuntimeError("no pools left")
        net = st.free.pop(0)
    pid = f"tp/{net}"
    if pid in st.pools:
        raise RuntimeError(f"pool {net} is in use")
    st.pools[pid] = {"net": net, "used": set()}
    return {"PoolID": pid, "Pool": str(net), "Data": {}}


def release_pool(st: State, a: dict) -> dict:
    st.pools.pop(a["PoolID"], None)
    return {}


def request_address(st: State, a: dict) -> dict:
    pool = st.pools.get(a["PoolID"])
    if pool is None:
        raise RuntimeError(f"no such pool {a['PoolID']}")
    net = pool["net"]
    if a.get("Address"):
        addr = ipaddress.ip_address(a["Address"])
        if addr in pool["used"]:
            raise RuntimeError(f"address {addr} is in use")
    else:
        addr = next(h for h in net.hosts() if h not in pool["used"])
    pool["used"].add(addr)
    return {"Address": f"{addr}/{net.prefixlen}", "Data": {}}


def release_address(st: State, a: dict) -> dict:
    pool = st.pools.get(a["PoolID"])
    if pool is not None:
        pool["used"].discard(ipaddress.ip_address(a["Address"]))
    return {}


def calls(st: State, a: dict) -> dict:
    return {"Calls": list(st.calls)}


HANDLERS = {
    "NetworkDriver.GetCapabilities": caps,
    "NetworkDriver.CreateNetwork": create_network,
    "NetworkDriver.DeleteNetwork": delete_network,
    "NetworkDriver.CreateEndpoint": create_endpoint,
    "NetworkDriver.DeleteEndpoint": delete_endpoint,
    "NetworkDriver.Join": join,
    "NetworkDriver.Leave": leave,
    "NetworkDriver.EndpointOperInfo": oper_info,
    "IpamDriver.GetCapabilities": ipam_caps,
    "IpamDriver.GetDefaultAddressSpaces": spaces,
    "IpamDriver.RequestPool": request_pool,
    "IpamDriver.ReleasePool": release_pool,
    "IpamDriver.RequestAddress": request_address,
    "IpamDriver.ReleaseAddress": release_address,
    "Test.Calls": calls,
}


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--pool-base", default="10.77.0.0/16")
    p.add_argument("--fault", default="", choices=["", "garbage", "err", "hang", "no-ipam"])
    opts = p.parse_args()
    Handler.state = State(opts.pool_base)
    Handler.fault = opts.fault
    if os.path.exists(opts.socket):
        os.unlink(opts.socket)
    srv = Server(opts.socket, Handler)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        os.unlink(opts.socket)
        sys.exit(0)


if __name__ == "__main__":
    main()
