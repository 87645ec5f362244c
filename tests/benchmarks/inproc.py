"""In-process measures (5 and 7), run as a worker inside netns ``ncb-inproc``:

    nsenter --net=/run/netns/ncb-inproc python -m tests.benchmarks.inproc --reps 200

prints one JSON object. The worker uses netcore's public Controller API on its own root
dir, so no CLI, HTTP or engine is in the numbers; the pyroute2 floor does the same
kernel work with bare pyroute2 calls (the library netcore itself uses), so the ratio
is netcore's own overhead. IPAM uses DefaultIpam on a real SQLite store.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sys
import time
from typing import Any

from tests.benchmarks.core import Stats

ROOT = "/var/lib/ncb-inproc"
IPAM_ROOT = "/var/lib/ncb-ipam"
SUBNET = "10.205.0.0/16"


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def controller_measures(reps: int, warmup: int = 5) -> dict[str, Any]:
    """Endpoint create+join+leave+delete on a live sandbox, and a full sandbox with one endpoint."""
    from netcore import names
    from netcore.controller import on_host
    from netcore.models import Attachment

    shutil.rmtree(ROOT, ignore_errors=True)
    c = on_host(ROOT)
    c.start()
    out: dict[str, Any] = {}
    try:
        c.create_network("ncbip", driver="bridge", subnet=SUBNET)
        sid = names.new_id()
        c.setup_sandbox(sid, "ncbsb", [])
        ep = []
        for i in range(warmup + reps):
            t0 = time.perf_counter()
            c.connect("ncbip", sid)
            c.disconnect("ncbip", sid)
            if i >= warmup:
                ep.append(_ms(t0))
        c.teardown_sandbox(sid)
        full, bare = [], []
        for i in range(warmup + reps):
            for series, atts in ((full, [Attachment("ncbip")]), (bare, [])):
                sid = names.new_id()
                t0 = time.perf_counter()
                c.setup_sandbox(sid, f"ncbs{i}", atts)
                c.teardown_sandbox(sid)
                if i >= warmup:
                    series.append(_ms(t0))
        out["endpoint"] = ep
        out["sandbox_bridge"] = full
        out["sandbox_none"] = bare
    finally:
        try:
            c.reset()
        finally:
            c.close()
            shutil.rmtree(ROOT, ignore_errors=True)
    return out


def pyroute2_floor(reps: int, warmup: int = 5) -> dict[str, Any]:
    """The same kernel objects with bare pyroute2: veth into the netns, bridge port, address, route."""
    from pyroute2 import IPRoute

    from netcore.osl import netns

    br = "ncbpbr0"
    gw = "10.207.0.1"
    ipr = IPRoute()
    ipr.link("add", ifname=br, kind="bridge")
    br_idx = ipr.link_lookup(ifname=br)[0]
    ipr.addr("add", index=br_idx, address=gw, prefixlen=16)
    ipr.link("set", index=br_idx, state="up")
    ep_times, full_times = [], []
    try:
        for i in range(warmup + reps):
            for series, make_ns in ((ep_times, False), (full_times, True)):
                path = f"/run/netns/ncbp-{os.getpid()}-{i}-{int(make_ns)}"
                veth = f"ncbpv{i % 100000}{int(make_ns)}"
                if not make_ns:
                    netns.create(os.path.basename(path))
                t0 = time.perf_counter()
                if make_ns:
                    netns.create(os.path.basename(path))
                fd = os.open(path, os.O_RDONLY)
                try:
                    ipr.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
                finally:
                    os.close(fd)
                idx = ipr.link_lookup(ifname=veth)[0]
                ipr.link("set", index=idx, master=br_idx, state="up")
                inner = netns.iproute(path)
                try:
                    eth0 = inner.link_lookup(ifname="eth0")[0]
                    inner.addr("add", index=eth0, address=str(ipaddress.IPv4Address("10.207.1.1") + i % 60000), prefixlen=16)
                    inner.link("set", index=eth0, state="up")
                    inner.route("add", dst="0.0.0.0/0", gateway=gw)
                finally:
                    inner.close()
                ipr.link("del", index=idx)
                if make_ns:
                    netns.delete(path)
                if i >= warmup:
                    series.append(_ms(t0))
                if not make_ns:
                    netns.delete(path)
    finally:
        ipr.link("del", index=br_idx)
        ipr.close()
    return {"floor_endpoint": ep_times, "floor_sandbox": full_times}


def ipam_measure(prefix: int) -> dict[str, Any]:
    """Allocate every address of one pool, then release them all, each op timed (7)."""
    from netcore.errors import Conflict
    from netcore.ipam import DefaultIpam
    from netcore.store import open_store

    shutil.rmtree(IPAM_ROOT, ignore_errors=True)
    os.makedirs(IPAM_ROOT)
    store = open_store(IPAM_ROOT)
    try:
        ipam = DefaultIpam(store)
        pool = ipam.request_pool(network_id="ncbipam", subnet=f"10.206.0.0/{prefix}", ip_range=None, options={})
        alloc_ms, addrs = [], []
        t_all = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            try:
                a = ipam.request_address(pool_id=pool.pool_id, address=None, options={})
            except Conflict:
                break
            alloc_ms.append(_ms(t0))
            addrs.append(a)
        alloc_total = _ms(t_all)
        release_ms = []
        t_all = time.perf_counter()
        for a in addrs:
            t0 = time.perf_counter()
            ipam.release_address(pool_id=pool.pool_id, address=a)
            release_ms.append(_ms(t0))
        release_total = _ms(t_all)
        ipam.release_pool(pool_id=pool.pool_id)
    finally:
        store.close()
        shutil.rmtree(IPAM_ROOT, ignore_errors=True)
    return {"ipam_alloc": alloc_ms, "ipam_release": release_ms, "ipam_count": len(addrs),
            "ipam_alloc_total_ms": alloc_total, "ipam_release_total_ms": release_total}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--what", default="controller,floor,ipam")
    ap.add_argument("--ipam-prefix", type=int, default=16)
    ap.add_argument("--raw", action="store_true", help="print every sample, not only statistics")
    a = ap.parse_args(argv)
    what = set(a.what.split(","))
    result: dict[str, Any] = {}
    if "controller" in what:
        result.update(controller_measures(a.reps))
    if "floor" in what:
        result.update(pyroute2_floor(a.reps))
    if "ipam" in what:
        result.update(ipam_measure(a.ipam_prefix))
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, list):
            out[k] = {"stats": Stats.of(v).as_dict() if v else None, **({"samples": v} if a.raw else {})}
            if k.startswith("ipam_") and len(v) >= 2:
                n = min(1000, len(v) // 2)  # 1000 for a /16 (the case)
                out[k]["first_1000"] = Stats.of(v[:n]).as_dict()
                out[k]["last_1000"] = Stats.of(v[-n:]).as_dict()
        else:
            out[k] = v
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
