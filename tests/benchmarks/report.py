"""Turn the raw results into the issue's table: value, peer, ratio, target, met/missed.

Ratios are always netcore / peer (below 1 means netcore is faster, except for
throughput where higher is better). A missing peer or a skipped measure gives a row
that says so instead of a number.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return None
        d = d[k]
    return d


def _r(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _row(measure: str, nc: float | None, peer: str, pv: float | None, target: str = "",
         ok: bool | None = None, unit: str = "ms", note: str = "") -> Row:
    return {"measure": measure, "netcore": nc, "peer": peer, "peer_value": pv, "ratio": _r(nc, pv),
            "unit": unit, "target": target, "met": ok, "note": note}


def build_rows(res: dict[str, Any]) -> list[Row]:
    m = res.get("measures", {})
    rows: list[Row] = []

    run_ = m.get("run") or {}
    nc_st = _get(run_, "netcore bridge-none (paired)", "median")
    for peer in ("docker", "podman"):
        pv = _get(run_, f"{peer} bridge-none (paired)", "median")
        rows.append(_row("1 setup+teardown / container (run bridge − run none)", nc_st, peer, pv, "netcore ≤ 10 ms",
                         None if nc_st is None else nc_st <= 10))
    rows.append(_row("1 setup+teardown / container", nc_st, "CNI bridge ADD+DEL", _get(run_, "cni add+del", "median"),
                     "netcore ≤ 10 ms", None if nc_st is None else nc_st <= 10))
    rows.append(_row("1 setup+teardown / container", nc_st, "kernel floor (ip -batch, endpoint)",
                     _get(run_, "floor endpoint", "median"), "netcore ≤ 10 ms", None if nc_st is None else nc_st <= 10))
    nc = _get(run_, "netcore run bridge", "median")
    for peer, lim in (("docker", 1 / 3), ("podman", 1 / 2)):
        pv = _get(run_, f"{peer} run bridge", "median")
        r = _r(nc, pv)
        rows.append(_row("2 `run --rm --network N -- true`", nc, peer, pv, f"ratio ≤ {lim:.2f}",
                         None if r is None else r <= lim))

    # measures 3 and 4: a target against one peer, the other for information
    for num, key, ops, (judge, other), limit, target in (
        (3, "network", ("create", "rm"), ("podman", "docker"), 1.0, "ratio ≤ 1 (Podman)"),
        (4, "connect", ("connect", "disconnect"), ("docker", "podman"), 1 / 3, "ratio ≤ 0.33 (Docker)"),
    ):
        series = m.get(key) or {}
        for op in ops:
            nc = _get(series, f"netcore {op}", "median")
            pv = _get(series, f"{judge} {op}", "median")
            r = _r(nc, pv)
            rows.append(_row(f"{num} `network {op}`", nc, judge, pv, target, None if r is None else r <= limit))
            rows.append(_row(f"{num} `network {op}`", nc, other, _get(series, f"{other} {op}", "median"), "(info)", None))

    ip = m.get("inproc") or {}
    nc50, nc99 = _get(ip, "endpoint", "stats", "median"), _get(ip, "endpoint", "stats", "p99")
    fl50 = _get(ip, "floor_endpoint", "stats", "median")
    r = _r(nc50, fl50)
    rows.append(_row("5 in-process endpoint create+join+leave+delete, p50", nc50, "floor (bare pyroute2)", fl50,
                     "ratio ≤ 2", None if r is None else r <= 2, note=f"netcore p99 {nc99} ms"))
    ipb = _get(run_, "floor endpoint", "median")
    rows.append(_row("5 in-process endpoint, p50", nc50, "floor (ip -batch)", ipb, "ratio ≤ 2",
                     None if _r(nc50, ipb) is None else _r(nc50, ipb) <= 2))
    sb, fsb = _get(ip, "sandbox_bridge", "stats", "median"), _get(ip, "floor_sandbox", "stats", "median")
    rows.append(_row("5 in-process sandbox (netns + endpoint) setup+teardown, p50", sb, "floor (bare pyroute2)", fsb,
                     "(info)", None, note=f"netcore p99 {_get(ip, 'sandbox_bridge', 'stats', 'p99')} ms"))

    many = m.get("many") or {}
    n = many.get("n")
    k = min(100, (n or 0) // 2) or 1
    for peer in ("docker", "podman"):
        for part in (f"first_{k}", f"last_{k}"):
            nc, pv = _get(many, "netcore", part, "median"), _get(many, peer, part, "median")
            rows.append(_row(f"6 `run -d` of {n} containers: {part.replace('_', ' ')}", nc, peer, pv, "(info)"))
        nc, pv = _get(many, "netcore", "engine_kib_per_container"), _get(many, peer, "engine_kib_per_container")
        rows.append(_row("6 engine memory per container (PSS)", nc, peer, pv, "(info)", unit="KiB"))
        nc, pv = _get(many, "netcore", "supervisor_kib_per_container"), _get(many, peer, "supervisor_kib_per_container")
        rows.append(_row("6 supervisor memory per container (PSS: monitor/shim/conmon)", nc, peer, pv, "(info)", unit="KiB"))

    ipam = m.get("ipam") or {}
    for op in ("alloc", "release"):
        last, first = _get(ipam, f"ipam_{op}", "last_1000", "median"), _get(ipam, f"ipam_{op}", "first_1000", "median")
        r = _r(last, first)
        rows.append(_row(f"7 IPAM {op}: last 1000 vs first 1000 of {ipam.get('ipam_count')} (median)", last,
                         "netcore first 1000", first, "O(1): ratio ≤ 1.5", None if r is None else r <= 1.5))

    tp = m.get("throughput") or {}
    for mode in ("container-container", "published 127.0.0.1"):
        nc = _get(tp, f"netcore {mode}", "median")
        for peer in ("docker", "podman"):
            pv = _get(tp, f"{peer} {mode}", "median")
            r = _r(nc, pv)
            note = "" if nc is not None or not tp else "netcore: not measured (see notes)"
            target = "ratio ≥ 0.95 (Docker)" if peer == "docker" else "(info)"
            rows.append(_row(f"8 TCP throughput {mode} (iperf3)", nc, peer, pv, target,
                             (None if r is None else r >= 0.95) if peer == "docker" else None, unit="Gbit/s", note=note))

    dns = m.get("dns") or {}
    for peer in ("docker", "podman"):
        rows.append(_row("9 DNS query for a container name (p50)", _get(dns, "netcore", "median"), peer,
                         _get(dns, peer, "median"), "(info)"))

    ls = m.get("ls") or {}
    nc = _get(ls, "netcore", "median")
    for peer in ("docker", "podman"):
        rows.append(_row("10 `network ls`", nc, peer, _get(ls, peer, "median"), "netcore ≤ 60 ms",
                         None if nc is None else nc <= 60))

    cn = m.get("cni") or {}
    if cn:
        nc, pv = _get(cn, "netcore-cni add+del", "median"), _get(cn, "cni bridge add+del", "median")
        r = _r(nc, pv)
        rows.append(_row("issue 14 CNI ADD+DEL, plugin exec included", nc, "CNI bridge plugin", pv, "ratio ≤ 0.5",
                         None if r is None else r <= 0.5,
                         note=f"ADD {_get(cn, 'netcore-cni add', 'median')}, DEL {_get(cn, 'netcore-cni del', 'median')}, "
                              f"exec floor {_get(cn, 'netcore-cni exec floor (VERSION)', 'median')}, "
                              f"bare interpreter {_get(cn, 'python -c pass (interpreter floor)', 'median')} ms"))

    cp = m.get("compose") or {}
    for op in ("up -d", "down"):
        nc, pv = _get(cp, f"netcore {op}", "median"), _get(cp, f"docker {op}", "median")
        r = _r(nc, pv)
        rows.append(_row(f"issue 11 `compose {op}` of the book's two services", nc, "docker-compose 1.29", pv,
                         "ratio ≤ 0.5", None if r is None else r <= 0.5))

    cl = m.get("clilib")
    if cl:
        bare = _get(cl, "bare import click", "median")
        for what in ("network ls", "--version"):
            cost = _get(cl, f"click over argparse, {what}", "median")
            rows.append(_row(f"click's cost over argparse, `{what}`", cost, "bare `import click`", bare,
                             "≤ bare import", None if cost is None or bare is None else cost <= bare))
        ls_click = _get(cl, "click CLI network ls", "median")
        rows.append(_row("`network ls`, click CLI (clilib)", ls_click, "argparse CLI", _get(cl, "argparse CLI network ls", "median"),
                         "click CLI ≤ 60 ms", None if ls_click is None else ls_click <= 60))

    ld = m.get("load")
    if ld:
        nc = _get(ld, "netcore", "median")
        for peer, key, target in (("tar -x + each layer", "tar-x-layers", "ratio ≤ 1.5"), ("tar -x (outer only)", "tar-x", "(info)")):
            pv = _get(ld, key, "median")
            r = _r(nc, pv)
            rows.append(_row(f"`load` of a {ld.get('archive_mb')} MB docker-save archive", nc, peer, pv, target,
                             None if target == "(info)" or r is None else r <= 1.5))

    from tests.benchmarks import build

    rows += build.rows(m, _row, _get, _r)
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)


def markdown(res: dict[str, Any], rows: list[Row]) -> str:
    meta = res["meta"]
    out = [f"# netcore benchmark run {meta['started']}", "",
           f"Machine: {meta['machine']}. Repetitions {meta['options']['reps']}, "
           f"{meta['options']['containers']} containers for measure 6. Shared machine: other test suites ran meanwhile.",
           "", "Versions: " + "; ".join(f"{k}: {v}" for k, v in meta["versions"].items()), "",
           "| measure | netcore | peer | peer value | ratio netcore/peer | unit | target | met? | note |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = {True: "met", False: "**missed**", None: ""}[r["met"]]
        out.append(f"| {r['measure']} | {_fmt(r['netcore'])} | {r['peer']} | {_fmt(r['peer_value'])} | "
                   f"{_fmt(r['ratio'])} | {r['unit']} | {r['target']} | {met} | {r['note']} |")
    notes = list(meta.get("notes", []))
    for name, m in res.get("measures", {}).items():
        if isinstance(m, dict):
            notes += [f"{name}: {n}" for n in m.get("notes", [])]
            if "error" in m:
                notes.append(f"{name}: FAILED: {m['error']}")
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    out += ["", "## Every series: median, min, max (ms unless stated; throughput Gbit/s)", "",
            "| measure | series | n | median | min | max | p99 |", "|---|---|---|---|---|---|---|"]
    for name, series in _all_series(res):
        for key, st in series:
            out.append(f"| {name} | {key} | {st['n']} | {_fmt(st['median'])} | {_fmt(st['min'])} | "
                       f"{_fmt(st['max'])} | {_fmt(st['p99'])} |")
    bd = res.get("measures", {}).get("breakdown", {})
    if bd.get("import_cumulative_us_top"):
        out += ["", "Slowest imports of `import runtime.cli` (cumulative µs, `python -X importtime`):", ""]
        out += [f"- {us} µs {mod.strip()}" for us, mod in bd["import_cumulative_us_top"]]
    return "\n".join(out) + "\n"


def _all_series(res: dict[str, Any]) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Every statistics dict in the results, found by shape, with a readable key path."""
    out = []

    def walk(prefix: str, d: Any, acc: list) -> None:
        if isinstance(d, dict) and {"median", "min", "max", "n"} <= set(d):
            acc.append((prefix, d))
        elif isinstance(d, dict):
            for k, v in d.items():
                walk(f"{prefix} {k}".strip() if k != "stats" else prefix, v, acc)

    for name, m in res.get("measures", {}).items():
        acc: list = []
        walk("", m, acc)
        if acc:
            out.append((name, acc))
    return out
