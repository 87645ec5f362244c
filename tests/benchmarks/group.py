"""Measure ``group``: the everyday container commands of issue 16 item 6 (pause, unpause,
top, stats --no-stream, cp in, diff, rename, info, events --since/--until) on one sleeping
container per peer, peers interleaved in every repetition. ``stats --no-stream`` waits for
a second sample by design (netcore: 0.5 s; Docker: about 1 s)."""

from __future__ import annotations

import time
from typing import Any

from tests.benchmarks.core import Stats, rotated, run, timed

NAME = "ncb-grp"
LOCAL = "/tmp/ncb-grp.txt"


def m_group(ctx: Any) -> dict[str, Any]:
    with open(LOCAL, "w") as f:
        f.write("x" * 4096)
    ready = []
    s: dict[str, list[float]] = {}
    try:
        for p in ctx.peers:
            run(p.run_argv("none", ["sleep", "3600"], rm=False, detach=True, name=NAME))
            ready.append(p)
            run(p.cli("top", NAME))  # warm the CLI's pages outside the timing
        since = f"{time.time() - 60:.0f}"
        steps = [
            ("pause", lambda p: p.cli("pause", NAME)),
            ("unpause", lambda p: p.cli("unpause", NAME)),
            ("top", lambda p: p.cli("top", NAME)),
            ("stats --no-stream", lambda p: p.cli("stats", "--no-stream", NAME)),
            ("cp in", lambda p: p.cli("cp", LOCAL, f"{NAME}:/tmp/")),
            ("diff", lambda p: p.cli("diff", NAME)),
            ("rename", lambda p: p.cli("rename", NAME, NAME + "2")),
            ("rename back", lambda p: p.cli("rename", NAME + "2", NAME)),
            ("info", lambda p: p.cli("info")),
            ("events --since --until", lambda p: p.cli("events", "--since", since, "--until", f"{time.time():.0f}")),
        ]
        for rep in range(ctx.reps):
            for p in rotated(ready, rep):
                for label, argv in steps:
                    s.setdefault(f"{p.name} {label}", []).append(timed(argv(p)))
    finally:
        for p in ready:
            run(p.rm_force_argv([NAME, NAME + "2"]), check=False)
    return {k: Stats.of(v).as_dict() if v else None for k, v in s.items()}
