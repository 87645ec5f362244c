"""Reconcile at engine start, through the controller: what a restart must put back or clear away.

Each test damages the kernel (or the store's view of it) behind the engine's back, starts
a new controller on the same root, and checks the result by its effect: packets that
cross again, names and addresses that can be taken again, objects that are gone.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from netcore import Attachment, names
from netcore.controller import Controller, on_host
from netcore.osl import links, netns

pytestmark = pytest.mark.root


def restart(c: Controller) -> Controller:
    """A new controller on the same root, as after an engine restart (the old one just closes)."""
    c.close()
    new = on_host(c.root, default_driver="bridge")
    new.start()
    return new


def pings(src_path: str, ip: str) -> bool:
    return subprocess.run(["nsenter", f"--net={src_path}", "ping", "-c", "1", "-W", "1", ip], capture_output=True).returncode == 0


def link_exists(name: str) -> bool:
    with netns.host() as ipr:
        return links.lookup(ipr, name) is not None


def box(c: Controller, net: Any, name: str, ip: str | None = None) -> Any:
    sb = c.setup_sandbox(f"{name}{'0' * 64}"[:64], name, [Attachment(net.name, ip=ip)])
    (ep,) = c.sandbox_endpoints(sb)
    return sb, ep


@pytest.fixture
def restartable(engine_root: str):
    """Like ``controller``, but the test may replace it (``holder[0]``) with a restarted one."""
    c = on_host(engine_root, default_driver="bridge")
    c.start()
    holder = [c]
    try:
        yield holder
    finally:
        try:
            holder[0].reset()
        finally:
            holder[0].close()


def test_a_deleted_bridge_is_made_again_with_its_containers_on_it(restartable, unique):
    c = restartable[0]
    net = c.create_network(f"rc{unique}", subnet=unique.subnet())
    (a, _), (b, eb) = box(c, net, f"rc{unique}a"), box(c, net, f"rc{unique}b")
    assert pings(a.netns_path, eb.ip)  # control before the damage
    subprocess.run(["ip", "link", "del", names.bridge_name(net.id)], check=True)
    assert not pings(a.netns_path, eb.ip)
    c = restartable[0] = restart(c)
    assert link_exists(names.bridge_name(net.id))
    assert pings(a.netns_path, eb.ip) and pings(b.netns_path, net.gateway)


def test_a_deleted_table_is_made_again_with_the_networks_rules(restartable, unique):
    c = restartable[0]
    n1 = c.create_network(f"rc{unique}1", subnet=unique.subnet())
    n2 = c.create_network(f"rc{unique}2", subnet=unique.subnet())
    (a, _), (_, eb) = box(c, n1, f"rc{unique}a"), box(c, n2, f"rc{unique}b")
    assert not pings(a.netns_path, eb.ip)  # isolated by the table's rules
    table = names.table_name(c.root)
    subprocess.run(["nft", "delete", "table", "inet", table], check=True)
    c = restartable[0] = restart(c)
    listed = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True)
    assert listed.returncode == 0 and names.bridge_name(n1.id) in listed.stdout
    assert not pings(a.netns_path, eb.ip)  # isolation is back
    assert pings(a.netns_path, n1.gateway)  # and the network still works


def test_a_sandbox_whose_netns_vanished_is_torn_down_and_its_address_freed(restartable, unique):
    c = restartable[0]
    net = c.create_network(f"rc{unique}", subnet=unique.subnet())
    sb, ep = box(c, net, f"rc{unique}a")
    veth = names.veth_name(ep.id)
    subprocess.run(["ip", "netns", "del", sb.netns_path.rsplit("/", 1)[1]], check=True)
    c = restartable[0] = restart(c)
    assert c.sandbox(sb.id) is None and c.endpoints(net) == []
    assert not link_exists(veth)
    again, ep2 = box(c, net, f"rc{unique}b", ip=ep.ip)  # the address was released
    assert ep2.ip == ep.ip and pings(again.netns_path, net.gateway)


def test_an_orphan_sandbox_netns_is_removed_and_others_are_left_alone(restartable, unique):
    c = restartable[0]
    orphan = f"nc-{c.tag}-{unique}{'0' * 12}"[: len(f"nc-{c.tag}-") + 12]
    foreign = f"nct-{unique}-keep"
    subprocess.run(["ip", "netns", "add", orphan], check=True)
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        assert names.is_sandbox_netns(orphan, c.tag)
        c = restartable[0] = restart(c)
        assert orphan not in netns.list_names()
        assert foreign in netns.list_names()  # not this engine's: untouched
    finally:
        subprocess.run(["ip", "netns", "del", orphan], capture_output=True)
        subprocess.run(["ip", "netns", "del", foreign], capture_output=True)


def test_a_failed_connect_leaves_nothing_and_the_address_can_be_taken(restartable, unique, monkeypatch):
    c = restartable[0]
    n1 = c.create_network(f"rc{unique}1", subnet=unique.subnet())
    n2 = c.create_network(f"rc{unique}2", subnet=unique.subnet())
    sb, _ = box(c, n1, f"rc{unique}a")
    ip = str(__import__("ipaddress").ip_network(n2.subnet).network_address + 10)
    with netns.host() as ipr:
        before = {l.name for l in links.owned(ipr, f"netcore:{c.tag}:")}
    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "endpoint.store")
    with pytest.raises(Exception):
        c.connect(n2.name, sb.id, ip=ip)
    monkeypatch.delenv("NETCORE_TEST_FAIL_STEP")
    with netns.host() as ipr:
        assert {l.name for l in links.owned(ipr, f"netcore:{c.tag}:")} == before
    assert [e.network_id for e in c.sandbox_endpoints(c.sandbox(sb.id))] == [n1.id]
    assert c.endpoints(n2) == []
    ep = c.connect(n2.name, sb.id, ip=ip)  # the same address, free again
    assert ep.ip == ip and pings(sb.netns_path, n2.gateway)
