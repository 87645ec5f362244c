"""The OS-layer rule, enforced on the source: drivers touch the kernel only through netcore/osl.

Read with ``ast`` (nothing is imported): no module under drivers/ imports ``subprocess``
or ``pyroute2`` or runs a program through ``os``; no module outside netcore/osl imports
``pyroute2`` nor ``subprocess``; the core never imports a driver.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM_CALLS = {"system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execlp", "spawnv", "spawnvp", "posix_spawn", "posix_spawnp", "fork", "forkpty"}


def modules(top: str) -> list[Path]:
    found = sorted((ROOT / top).rglob("*.py"))
    assert found, f"no modules under {top}/"
    return found


def imports(path: Path) -> set[str]:
    """Every module name ``path`` imports (``a.b`` for ``import a.b`` and ``from a.b import c``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def os_program_calls(path: Path) -> set[str]:
    """``os.system(...)``-style calls that run or fork a program."""
    return {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "os" and node.func.attr in PROGRAM_CALLS
    }


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def offenders(paths: list[Path], banned: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in paths:
        bad = sorted(m for m in imports(path) if m.split(".")[0] in banned or m in banned)
        if bad:
            found[rel(path)] = bad
    return found


def test_no_driver_runs_a_program_or_speaks_netlink_itself():
    assert offenders(modules("drivers"), ("subprocess", "pyroute2")) == {}
    assert {rel(p): sorted(os_program_calls(p)) for p in modules("drivers") if os_program_calls(p)} == {}


@pytest.mark.parametrize("top", ["drivers", "netcore", "runtime"])
def test_pyroute2_only_in_the_os_layer(top):
    outside = [p for p in modules(top) if not rel(p).startswith("netcore/osl/")]
    assert offenders(outside, ("pyroute2",)) == {}


TEST_PLUGIN = "netcore/testing.py"  # the pytest plugin for driver authors: runs the CLI and ``ip`` as a test does


def test_the_core_runs_programs_only_through_the_os_layer():
    outside = [p for p in modules("netcore") if not rel(p).startswith("netcore/osl/") and rel(p) != TEST_PLUGIN]
    assert offenders(outside, ("subprocess",)) == {}


def test_nothing_but_tests_imports_the_pytest_plugin():
    """The one module of the core exempt from the rule above is test tooling, never loaded by the engine."""
    found = [p for top in ("netcore", "runtime", "drivers") for p in modules(top) if rel(p) != TEST_PLUGIN]
    assert offenders(found, ("netcore.testing",)) == {}


def test_the_core_imports_no_driver():
    assert offenders(modules("netcore"), ("drivers",)) == {}


def test_the_checks_see_imports():
    """The checks above could fail: they find the imports the OS layer really has."""
    assert "pyroute2" in {m.split(".")[0] for p in modules("netcore/osl") for m in imports(p)}
    assert "subprocess" in imports(ROOT / "netcore/osl/daemons.py")
