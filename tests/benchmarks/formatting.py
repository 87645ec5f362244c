"""``ps --format`` and ``inspect -f`` against the plain commands (issue 16: within 5 ms).

One netcore engine with a few containers; every repetition runs each command once, in a
rotating order, so load on the shared machine hits all alike. The overheads are medians
of the per-repetition differences (template vs plain, same repetition). Docker, when it is
a peer, runs the same pairs against its own daemon for the side-by-side figure.
"""

from __future__ import annotations

from typing import Any

from tests.benchmarks.core import Stats, rotated, run, timed
from tests.benchmarks.peer import Peer

NAME = "ncbfmt"
COUNT = 5
PS_TEMPLATE = "table {{.ID}}\t{{.Names}}\t{{.Status}}\t{{.Label \"app\"}}"
INSPECT_TEMPLATE = "{{.NetworkSettings.IPAddress}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}{{end}} {{json .Config.Env}}"


def _diff(a: list[float], b: list[float]) -> dict[str, Any] | None:
    return Stats.of([x - y for x, y in zip(a, b)]).as_dict() if a and b else None


def measure(peers: list[Peer], reps: int, network: str) -> dict[str, Any]:
    names = [f"{NAME}{i}" for i in range(COUNT)]
    for p in peers:
        for n in names:
            run(p.cli("run", "-d", "--name", n, "--network", network, *p.run_image, "sleep", "600"))
    try:
        steps: dict[str, list[str]] = {}
        for p in peers:
            steps[f"{p.name} ps"] = p.cli("ps")
            steps[f"{p.name} ps --format"] = p.cli("ps", "--format", PS_TEMPLATE)
            steps[f"{p.name} inspect"] = p.cli("inspect", names[0])
            steps[f"{p.name} inspect -f"] = p.cli("inspect", "-f", INSPECT_TEMPLATE, names[0])
        for argv in steps.values():  # warm up, and fail early on a command a peer refuses
            run(argv)
        s: dict[str, list[float]] = {k: [] for k in steps}
        for rep in range(reps):
            for key in rotated(list(steps), rep):
                s[key].append(timed(steps[key]))
        out: dict[str, Any] = {k: Stats.of(v).as_dict() for k, v in s.items()}
        for p in peers:
            out[f"{p.name} ps --format over ps"] = _diff(s[f"{p.name} ps --format"], s[f"{p.name} ps"])
            out[f"{p.name} inspect -f over inspect"] = _diff(s[f"{p.name} inspect -f"], s[f"{p.name} inspect"])
        out.update(_in_process(reps))
        out["notes"] = [f"{COUNT} running containers per peer; ps template {PS_TEMPLATE!r}; inspect template {INSPECT_TEMPLATE!r}"]
        return out
    finally:
        for p in peers:
            run(p.cli("rm", "-f", *names), check=False)


def _in_process(reps: int) -> dict[str, Any]:
    """The template work alone, in this process: importing the modules (in a fresh interpreter,
    against one importing only the CLI's base), and parsing + running the ps template on 5 rows."""
    import sys
    import time

    from runtime.cli.formatting import context, tabwriter
    from runtime.cli.gotemplate import Template

    base = [sys.executable, "-c", "import runtime.cli, runtime.cli.base, runtime.api.client"]
    full = [*base[:2], base[2] + "; import runtime.cli.listings"]
    imports: dict[str, list[float]] = {"import base": [], "import base + listings": []}
    for rep in range(reps):
        for key, argv in rotated([("import base", base), ("import base + listings", full)], rep):
            imports[key].append(timed(argv))
    rows = [context("container", {"ID": f"{i:012x}", "Names": f"c{i}", "Status": "Up 2 minutes"}, {"app": "web"}) for i in range(COUNT)]
    render: list[float] = []
    for _ in range(reps):
        t0 = time.perf_counter()
        tmpl = Template(PS_TEMPLATE.removeprefix("table "))
        tabwriter("\n".join(tmpl.execute(r) for r in rows))
        render.append((time.perf_counter() - t0) * 1000)
    return {
        **{k: Stats.of(v).as_dict() for k, v in imports.items()},
        "template modules' import (listings over base)": _diff(imports["import base + listings"], imports["import base"]),
        f"parse + run the ps template on {COUNT} rows, in process": Stats.of(render).as_dict(),
    }
