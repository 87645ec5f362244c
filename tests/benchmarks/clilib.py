"""click's own cost: the click CLI against the argparse CLI it replaced, in the same run.

Both CLIs are copied into temp dirs (``runtime/__init__.py``, ``runtime/api``,
``runtime/cli``): the argparse one from the commit before click came back (the parent of
the commit that added ``runtime/cli/base.py``), the click one from this checkout, both
compiled to bytecode, and run through the same ``netcore`` entry point with
``PYTHONPATH`` pointing at their dir, against the same engine. Interleaved in a rotating
order in every repetition with the interpreter alone, the bare ``import click``, and a
minimal argparse parser and a minimal click group (the issue's yardstick), so load on the
shared machine hits all alike. The differences are medians of per-repetition differences.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Any

from tests.benchmarks.core import BenchError, Stats, in_netns, rotated, run, timed
from tests.benchmarks.measures import REPO
from tests.benchmarks.netcore_peer import ROOT, SOCK, Netcore

MIN_ARGPARSE = (
    "import argparse\np = argparse.ArgumentParser(prog='x')\n"
    "p.add_subparsers().add_parser('ls')\np.parse_args(['ls'])"
)
MIN_CLICK = (
    "import click\n@click.group()\ndef g(): pass\n@g.command()\ndef ls(): pass\n"
    "g(['ls'], standalone_mode=False)"
)
PARTS = ("runtime/__init__.py", "runtime/api", "runtime/cli")


def _argparse_rev() -> str:
    added = run(["git", "-C", REPO, "log", "--diff-filter=A", "--format=%H", "-1", "--", "runtime/cli/base.py"]).stdout.strip()
    if not added:
        raise BenchError("no commit adds runtime/cli/base.py: cannot find the argparse CLI to compare with")
    return added + "^"


def _export_argparse(dst: str) -> str:
    rev = _argparse_rev()
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", rev, *PARTS], capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dst, filter="data")
    return run(["git", "-C", REPO, "rev-parse", "--short", rev]).stdout.strip()


def _copy_checkout(dst: str) -> None:
    for part in PARTS:
        src, out = os.path.join(REPO, part), os.path.join(dst, part)
        if os.path.isdir(src):
            shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copy(src, out)


def _uses_click(env: dict[str, str], where: str) -> bool:
    """Whether the CLI that ``env`` selects imports click (-P: not the cwd's ``runtime``)."""
    probe = "import sys, runtime.cli; print(runtime.cli.__file__, 'click' in sys.modules)"
    path, uses = run([sys.executable, "-P", "-c", probe], env=env).stdout.split()
    if not path.startswith(where):
        raise BenchError(f"PYTHONPATH={where} did not select its CLI: runtime.cli is {path}")
    return uses == "True"


def _diff(a: list[float], b: list[float]) -> dict[str, Any] | None:
    return Stats.of([x - y for x, y in zip(a, b)]).as_dict() if a and b else None


def measure(peer: Netcore, reps: int) -> dict[str, Any]:
    python = sys.executable
    tmp = tempfile.mkdtemp(prefix="ncb-clilib-")
    try:
        old_dir, new_dir = os.path.join(tmp, "argparse"), os.path.join(tmp, "click")
        rev = _export_argparse(old_dir)
        _copy_checkout(new_dir)
        for d in (old_dir, new_dir):
            compileall.compile_dir(d, quiet=1)
        env_old = dict(os.environ, PYTHONPATH=old_dir)
        env_new = dict(os.environ, PYTHONPATH=new_dir)
        if _uses_click(env_old, old_dir) or not _uses_click(env_new, new_dir):
            raise BenchError("the copied CLIs are not argparse (before) and click (now)")

        def cli(*args: str) -> list[str]:
            return in_netns(peer.netns, [peer.bin, "-H", f"unix://{SOCK}", "--root", ROOT, *args])

        steps = {
            "python -c pass": ([python, "-c", "pass"], None),
            "python -c 'import click'": ([python, "-c", "import click"], None),
            "minimal argparse parser": ([python, "-c", MIN_ARGPARSE], None),
            "minimal click group": ([python, "-c", MIN_CLICK], None),
            "argparse CLI --version": (cli("--version"), env_old),
            "click CLI --version": (cli("--version"), env_new),
            "argparse CLI network ls": (cli("network", "ls"), env_old),
            "click CLI network ls": (cli("network", "ls"), env_new),
        }
        s: dict[str, list[float]] = {k: [] for k in steps}
        for rep in range(reps):
            for key in rotated(list(steps), rep):
                argv, env = steps[key]
                s[key].append(timed(argv, env=env))
        out: dict[str, Any] = {k: Stats.of(v).as_dict() for k, v in s.items()}
        out["click over argparse, network ls"] = _diff(s["click CLI network ls"], s["argparse CLI network ls"])
        out["click over argparse, --version"] = _diff(s["click CLI --version"], s["argparse CLI --version"])
        out["bare import click"] = _diff(s["python -c 'import click'"], s["python -c pass"])
        out["minimal click group over minimal argparse parser"] = _diff(s["minimal click group"], s["minimal argparse parser"])
        out["notes"] = [f"argparse CLI from commit {rev}; click CLI from this checkout"]
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
