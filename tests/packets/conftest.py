"""Fixtures for the scapy packet tests; the helpers live in ``pktlab``.

``outside``: a namespace of the test's own (``nct-<unique>``), joined to the host by a
veth pair (``nct<unique>h`` on the host) with a test-only /30, and holding an "outside
host" address on its loopback that the host reaches by a /32 route through the /30:
another host on the underlay, for egress and published-port tests.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # pktlab, whatever the import mode
from pktlab import Lab  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # tests/reserve.py
from reserve import free_port  # noqa: E402


@pytest.fixture
def lab(controller: Any, unique: str) -> Iterator[Lab]:
    """Networks, sandboxes and scapy sockets on a started controller; sockets closed at teardown."""
    lab = Lab(controller, unique)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def port() -> int:
    return free_port()


@dataclass
class Outside:
    netns: str  # name
    host_if: str  # host end of the veth pair
    out_if: str  # outside end, inside ``netns``
    host_ip: str  # the host's address on the /30 (what masquerade must rewrite to)
    peer_ip: str  # the outside end's address on the /30
    addr: str  # the "outside host": on the outside netns' loopback, routed via peer_ip

    @property
    def path(self) -> str:
        return f"/run/netns/{self.netns}"


@pytest.fixture
def outside(unique, host) -> Iterator[Outside]:
    p2p = ipaddress.ip_network(unique.subnet(30))
    host_ip, peer_ip = (str(a) for a in p2p.hosts())
    addr = str(next(ipaddress.ip_network(unique.subnet()).hosts()))
    o = Outside(f"nct-{unique}", f"nct{unique}h", f"nct{unique}o", host_ip, peer_ip, addr)
    try:
        host.run("ip", "netns", "add", o.netns)
        host.run("ip", "link", "add", o.host_if, "type", "veth", "peer", "name", o.out_if, "netns", o.netns)
        host.run("ip", "addr", "add", f"{host_ip}/30", "dev", o.host_if)
        host.run("ip", "link", "set", o.host_if, "up")
        host.run("ip", "-n", o.netns, "link", "set", "lo", "up")
        host.run("ip", "-n", o.netns, "addr", "add", f"{peer_ip}/30", "dev", o.out_if)
        host.run("ip", "-n", o.netns, "addr", "add", f"{addr}/32", "dev", "lo")
        host.run("ip", "-n", o.netns, "link", "set", o.out_if, "up")
        host.run("ip", "route", "add", f"{addr}/32", "via", peer_ip, "dev", o.host_if)
        yield o
    finally:
        host.run("ip", "route", "del", f"{addr}/32", check=False)
        host.run("ip", "link", "del", o.host_if, check=False)
        host.run("ip", "netns", "del", o.netns, check=False)
