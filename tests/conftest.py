"""Fixtures shared by the whole suite.

- ``_leak_check`` (session, autouse): snapshots netcore-looking kernel objects
  (netns ``nc-*``/``nct-*`` in /run/netns, host links ``nc*`` or with a
  ``netcore:`` alias, nft tables ``netcore*``, main-table IPv4 routes on those
  links, routes of the routed driver's protocol 78, BIRD daemons of engines) before the run and fails the session if new ones are left after it
  (objects tagged by a netcore engine of another process are only reported).
  ``NETCORE_LEAK_CHECK=0`` turns it off.
- ``unique``: a short random hex string per test that also hands out /24s (or
  smaller) in 10.0.0.0/8 overlapping no route or address on the host.
- ``engine_root``, ``controller``: a started :class:`netcore.controller.Controller`
  on its own root dir, reset and closed at teardown.
- ``nsrun``: run a command inside a sandbox's network namespace (``nsenter --net``);
  ``host``: ``ip``/``nft`` on the host for test-made objects.

Tests that need root carry ``pytest.mark.root``; they are skipped when not root.
Test-only kernel objects must be named with the ``nct`` prefix (links ``nct...``,
netns ``nct-...``) so that the leak check covers them as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reserve import free_subnet

IS_ROOT = os.geteuid() == 0
NETNS_DIR = "/run/netns"
NETNS_PREFIXES = ("nc-", "nct-")
LINK_PREFIX = "nc"
TABLE_PREFIX = "netcore"

# ============================================================ root marking ====


def pytest_configure(config: pytest.Config) -> None:
    # also declared in pyproject.toml; repeated so the suite works from any rootdir
    config.addinivalue_line("markers", "root: needs root and real namespaces")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (real namespaces)")
    for item in items:
        if item.get_closest_marker("root") is not None:
            item.add_marker(skip)


# ============================================================ leak check ======
#
# Objects are keyed by name; netcore's carry their engine's tag (netns ``nc-<tag>-...``,
# link alias ``netcore:<tag>:<id>``, table ``netcore-<tag>``). A new object whose tag
# belongs to an engine of *another* process (an engineer's benchmark running beside the
# suite) is reported but does not fail the run; everything else new does: untagged
# objects (``nct*`` test objects, ``nc-*`` netns of other tests) and objects of the
# suite's engines. The suite's tags are those computed in this process plus those of
# every directory under the session's base temp dir (engines the suite ran as
# subprocesses with a root there).


@dataclass(frozen=True)
class KObj:
    kind: str  # netns, link, nft table, route
    name: str  # how it is printed
    tag: str | None = None  # the netcore engine tag it carries, if any


def _run_json(argv: list[str]) -> Any:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if out.returncode != 0 or not out.stdout.strip():
        return []
    return json.loads(out.stdout)


def _netns() -> set[KObj]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return set()
    out = set()
    for n in names:
        if n.startswith(NETNS_PREFIXES):
            parts = n.split("-")
            tag = parts[1] if n.startswith("nc-") and len(parts) >= 3 and len(parts[1]) == 6 else None
            out.add(KObj("netns", n, tag))
    return out


def _bridge_tags() -> dict[str, str]:
    """Bridge name -> engine tag, from the ``net_ifs`` set of each ``netcore-<tag>`` table.

    A fallback for links whose alias is missing.
    """
    if not IS_ROOT or shutil.which("nft") is None:
        return {}
    out: dict[str, str] = {}
    tables = _run_json(["nft", "-j", "list", "tables"])
    for obj in tables.get("nftables", []) if isinstance(tables, dict) else []:
        t = obj.get("table") or {}
        name = t.get("name", "")
        if not name.startswith(TABLE_PREFIX + "-"):
            continue
        listing = _run_json(["nft", "-j", "list", "set", t["family"], name, "net_ifs"])
        for item in listing.get("nftables", []) if isinstance(listing, dict) else []:
            for elem in (item.get("set") or {}).get("elem", []):
                if isinstance(elem, str):
                    out[elem] = name[len(TABLE_PREFIX) + 1 :]
    return out


def _links() -> set[KObj]:
    links = _run_json(["ip", "-j", "link", "show"])
    by_bridge: dict[str, str] | None = None
    out = set()
    for link in links:
        name = link.get("ifname", "")
        alias = link.get("ifalias") or ""
        if not (name.startswith(LINK_PREFIX) or alias.startswith("netcore:")):
            continue
        parts = alias.split(":")
        tag = parts[1] if alias.startswith("netcore:") and len(parts) == 3 else None
        if tag is None and name.startswith(("ncbr-", "ncve-")):
            if by_bridge is None:
                by_bridge = _bridge_tags()
            tag = by_bridge.get(name) or by_bridge.get(link.get("master", ""))
        out.add(KObj("link", f"{name} ({alias})" if alias else name, tag))
    return out


def _nft_tables() -> set[KObj]:
    if not IS_ROOT or shutil.which("nft") is None:
        return set()
    tables = _run_json(["nft", "-j", "list", "tables"])
    out = set()
    for obj in tables.get("nftables", []) if isinstance(tables, dict) else []:
        t = obj.get("table")
        if t and t.get("name", "").startswith(TABLE_PREFIX):
            name = t["name"]
            tag = name[len(TABLE_PREFIX) + 1 :] if name.startswith(TABLE_PREFIX + "-") else None
            out.add(KObj("nft table", f"{t['family']} {name}", tag))
    return out


ROUTED_PROTO = "78"  # routes of the routed driver (/32s, blackholes, remote blocks, 169.254.1.1)


def _routes(links: set[KObj]) -> set[KObj]:
    tags = {k.name.split(" ")[0]: k.tag for k in links}
    out = set()
    for r in _run_json(["ip", "-j", "-4", "route", "show", "table", "main"]):
        dev = r.get("dev", "")
        if dev.startswith(LINK_PREFIX) or dev in tags or str(r.get("protocol")) == ROUTED_PROTO:
            text = " ".join(f"{k} {r[k]}" for k in ("type", "dst", "gateway", "dev", "protocol") if r.get(k))
            out.add(KObj("route", text, tags.get(dev)))
    return out


def _bird() -> set[KObj]:
    """BIRD daemons of netcore engines (routed, routing=bgp): config <root>/routed/bird.conf."""
    out = set()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) != "bird" or "-c" not in argv[:-1]:
            continue
        conf = argv[argv.index("-c") + 1]
        if conf.endswith("/routed/bird.conf"):
            root = conf[: -len("/routed/bird.conf")]
            out.add(KObj("process", f"bird -c {conf}", hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:6]))
    return out


def snapshot() -> set[KObj]:
    """The netcore-looking objects on the host right now."""
    links = _links()
    return _netns() | links | _nft_tables() | _routes(links) | _bird()


_seen_tags: set[str] = set()


def _record_engine_tags() -> None:
    """Remember every engine tag computed in this process (the suite's controllers)."""
    from netcore import names

    if getattr(names.engine_tag, "_recording", False):
        return
    orig = names.engine_tag

    def engine_tag(root: str) -> str:
        tag = orig(root)
        _seen_tags.add(tag)
        return tag

    engine_tag._recording = True  # type: ignore[attr-defined]
    names.engine_tag = engine_tag


def _suite_tags(basetemp: Path | None) -> set[str]:
    tags = set(_seen_tags)
    if basetemp is not None and basetemp.is_dir():
        for dirpath, dirnames, _ in os.walk(basetemp):
            if dirpath.count(os.sep) - str(basetemp).count(os.sep) >= 6:
                dirnames[:] = []
            for d in dirnames:
                tags.add(hashlib.sha256(os.path.join(dirpath, d).rstrip("/").encode()).hexdigest()[:6])
    return tags


def _report(objs: set[KObj]) -> str:
    kinds: dict[str, list[str]] = {}
    for o in objs:
        kinds.setdefault(o.kind, []).append(o.name)
    return "\n".join(f"  {kind}: {', '.join(sorted(names))}" for kind, names in sorted(kinds.items()))


@pytest.fixture(scope="session", autouse=True)
def _leak_check(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the session if the suite leaves netns, links, nft tables or routes behind."""
    if os.environ.get("NETCORE_LEAK_CHECK", "1") == "0":
        yield
        return
    try:
        _record_engine_tags()
    except ImportError:
        pass
    before = snapshot()
    yield
    basetemp = tmp_path_factory.getbasetemp()
    # deleting a netns destroys the links inside it (and the veths with a peer there)
    # asynchronously, and a container's teardown relies on that: give the kernel a moment
    deadline = time.monotonic() + 5.0
    while True:
        new = snapshot() - before
        ours = _suite_tags(basetemp)
        leaks = {o for o in new if o.tag is None or o.tag in ours}
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    foreign = new - leaks
    if foreign:
        _notes.append("objects of other netcore engines appeared during the run (not counted as leaks):\n" + _report(foreign))
    if leaks:
        pytest.fail("the test session left kernel objects behind:\n" + _report(leaks), pytrace=False)


_notes: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Under CI (``CI`` set) a skip is a failure: a machine missing etcd, BIRD or the test
    driver package must not come out green. A normal run skips nothing either."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every dependency must be installed: {reason}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for note in _notes:
        terminalreporter.write_line("leak check: " + note)


# ============================================================ unique ==========

class Unique(str):
    """A short random hex string, unique per test, that also picks free test subnets.

    ``unique.subnet()`` returns a fresh test subnet (``reserve.free_subnet``).
    """

    def subnet(self, prefixlen: int = 24) -> str:
        return free_subnet(prefixlen)


@pytest.fixture
def unique() -> Unique:
    return Unique(secrets.token_hex(3))


# ============================================================ controller ======


@pytest.fixture
def engine_root(tmp_path: Path, unique: Unique) -> Iterator[str]:
    """A fresh root dir; its random name gives the engine a tag no other run shares."""
    root = tempfile.mkdtemp(prefix=f"netcore-{unique}-", dir=tmp_path)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def controller(engine_root: str) -> Iterator[Any]:
    """A started Controller; everything it made is removed at teardown."""
    if not IS_ROOT:
        pytest.skip("needs root")
    from netcore.controller import on_host

    c = on_host(engine_root, default_driver="bridge")
    try:
        c.start()
        yield c
    finally:
        try:
            c.reset()
        finally:
            c.close()


# ============================================================ namespaces ======


def netns_path(target: Any) -> str:
    """The netns path of a Sandbox, a ``/run/netns`` path, or a netns name."""
    path = getattr(target, "netns_path", target)
    if not isinstance(path, str) or not path:
        raise ValueError(f"{target!r} has no network namespace")
    return path if "/" in path else f"{NETNS_DIR}/{path}"


def run_in_netns(target: Any, *argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the network namespace of ``target`` (see ``netns_path``)."""
    proc = subprocess.run(
        ["nsenter", f"--net={netns_path(target)}", *argv], capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {netns_path(target)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


@pytest.fixture
def nsrun():
    """``nsrun(sandbox_or_path, *argv, check=True)`` -> CompletedProcess."""
    return run_in_netns


@dataclass
class HostCmd:
    """``ip``/``nft`` on the host, for tests that build their own objects (``nct`` names)."""

    @staticmethod
    def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    @staticmethod
    def link(name: str) -> dict[str, Any]:
        return _run_json(["ip", "-j", "link", "show", "dev", name])[0]


@pytest.fixture
def host() -> HostCmd:
    return HostCmd()


# ============================================================ etcd ============
#
# ``etcd_server`` (session): one private etcd (tests/etcd_server.py) on free ports with
# its own data dir, never the system's service. ``etcd_store``: an EtcdStore on a
# unique key prefix per test, so tests share that etcd without seeing each other's
# keys; closed after the test.


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from etcd_server import ETCD, start_etcd

    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"{ETCD} is missing: apt-get install etcd-server (scripts/setup.sh does)")
    srv = start_etcd(str(tmp_path_factory.mktemp("etcd") / "data"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def etcd_store(etcd_server: Any, unique: Unique) -> Iterator[Any]:
    from netcore.store.etcd import EtcdStore

    store = EtcdStore(etcd_server.url, prefix=f"/nctest-{unique}/")
    try:
        yield store
    finally:
        store.close()
