"""Fixtures for CLI-level integration tests: a private engine per test."""

from __future__ import annotations

import ipaddress
import random
import subprocess
from pathlib import Path

import pytest

from cli_engine import Engine, free_subnet


@pytest.fixture
def engine(tmp_path: Path):
    eng = Engine(tmp_path).start()
    yield eng
    eng.stop()


@pytest.fixture
def subnet() -> str:
    return free_subnet()


@pytest.fixture
def name() -> str:
    return f"t{random.randbytes(3).hex()}"


@pytest.fixture
def underlay(name):
    """A client host: netns ``nct-<name>`` with a veth to the host; yields (netns path, host ip, client ip)."""
    net = ipaddress.ip_network(free_subnet(30))
    host_ip, client_ip = (str(a) for a in net.hosts())
    ns, h, c = f"nct-{name}", f"nct{name}h", f"nct{name}c"
    cmds = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", h, "type", "veth", "peer", "name", c, "netns", ns],
        ["ip", "addr", "add", f"{host_ip}/30", "dev", h],
        ["ip", "link", "set", h, "up"],
        ["ip", "-n", ns, "addr", "add", f"{client_ip}/30", "dev", c],
        ["ip", "-n", ns, "link", "set", c, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
    ]
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)
        yield f"/run/netns/{ns}", host_ip, client_ip
    finally:
        subprocess.run(["ip", "link", "del", h], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
