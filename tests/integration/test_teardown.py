"""Sandbox teardown: the kernel reaps the interfaces with the netns; a disconnect deletes at once.

When the whole sandbox goes, drivers leave its veths to the kernel, which destroys them
with the netns in the background. That only works if nothing keeps the netns alive
(the embedded DNS's sockets, a netlink socket of the engine ...): these tests poll, with
a deadline, until the host end of the veth is gone, which happens only once the kernel
has destroyed the namespace.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Callable

import pytest

from cli_engine import engine_links
from netcore import Attachment, names
from netcore.errors import NetcoreError
from netcore.osl import links, netns

pytestmark = pytest.mark.root

REAPED_WITHIN = 10.0  # seconds; the kernel usually needs a few milliseconds


def eventually(cond: Callable[[], bool], timeout: float = REAPED_WITHIN) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def link_exists(name: str) -> bool:
    with netns.host() as ipr:
        return links.lookup(ipr, name) is not None


def holders(ns_ident: str) -> list[str]:
    """Processes with a task in, or a file descriptor on, the network namespace ``net:[inode]``."""
    out = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            paths = [f"/proc/{pid}/ns/net"] + [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for p in paths:
            try:
                if os.readlink(p) == ns_ident:
                    out.append(p)
            except OSError:
                pass
    return out


# ============================================================ the engine =====


def test_run_rm_leaves_nothing_once_the_kernel_reaped_the_netns(engine, name):
    engine("network", "create", name)
    before = engine_links(engine)
    # the container talks to the embedded DNS over UDP and keeps a TCP connection to it
    # open until it exits: the engine's sockets in its netns must not outlive it
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + bytes([len(name) + 2]) + f"{name}-c".encode() + b"\x00\x00\x01\x00\x01"
    script = (
        "import os,socket\n"
        "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(2)\n"
        f"u.sendto({query!r},('127.0.0.11',53)); print(socket.inet_ntoa(u.recv(512)[-4:]))\n"
        "t=socket.create_connection(('127.0.0.11',53),timeout=2); t.sendall(b'\\x00')\n"
        "print(os.readlink('/proc/self/ns/net'))\n"
    )
    out = engine("run", "--rm", "--name", f"{name}-c", "--network", name, "--", "python3", "-c", script).stdout.split()
    ip, ns_ident = out
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(engine.json("network", "inspect", name)[0]["IPAM"]["Config"][0]["Subnet"])
    assert ns_ident.startswith("net:[")
    assert eventually(lambda: engine_links(engine) == before), engine_links(engine) - before  # the veth went with the netns
    assert holders(ns_ident) == []
    assert not [n for n in netns.list_names() if n.startswith(f"nc-{names.engine_tag(engine.root)}-")]
    engine("network", "rm", name)


def test_a_run_that_fails_half_way_leaves_nothing(engine, name, subnet):
    """The first network is joined, the second refuses a taken address: the rollback tears the
    whole sandbox down, so the first veth is the kernel's to reap."""
    engine("network", "create", name + "-a")
    engine("network", "create", "--subnet", subnet, name + "-b")
    taken = str(ipaddress.ip_network(subnet).network_address + 7)
    engine("run", "-d", "--name", name + "-1", "--network", f"name={name}-b,ip={taken}", "--", "sleep", "60")
    before = engine_links(engine)
    res = engine("run", "--rm", "--network", name + "-a", "--network", f"name={name}-b,ip={taken}", "--", "true", check=False)
    assert res.returncode != 0 and "already" in res.stderr.lower(), res.stderr
    assert eventually(lambda: engine_links(engine) == before), engine_links(engine) - before
    assert engine.json("network", "inspect", name + "-a")[0]["Containers"] == {}
    sandboxes = [n for n in netns.list_names() if n.startswith(f"nc-{names.engine_tag(engine.root)}-")]
    assert len(sandboxes) == 1  # the running container's
    engine("rm", "-f", name + "-1")
    engine("network", "rm", name + "-a", name + "-b")


# ============================================================ the core =======


def test_teardown_leaves_the_veth_to_the_netns_and_disconnect_deletes_it(controller, unique):
    net = controller.create_network(f"t{unique}", subnet=unique.subnet())
    other = controller.create_network(f"u{unique}", subnet=unique.subnet())
    sid = secrets.token_hex(32)
    sandbox = controller.setup_sandbox(sid, f"c{unique}", [Attachment(net.name)])
    ep = controller.connect(other.name, sid)
    veth = names.veth_name(ep.id)
    assert link_exists(veth)
    controller.disconnect(other.name, sid)
    assert not link_exists(veth)  # the netns stays: deleted at once, no waiting
    ep = controller.sandbox_endpoints(controller.sandbox(sid))[0]
    veth = names.veth_name(ep.id)

    held = os.open(sandbox.netns_path, os.O_RDONLY)  # we keep the netns alive for a moment
    try:
        controller.teardown_sandbox(sid)
        assert not netns.exists(sandbox.netns_path)
        assert link_exists(veth)  # not deleted by the driver: it waits for the netns
    finally:
        os.close(held)
    assert eventually(lambda: not link_exists(veth))
    assert controller.endpoints(net) == []


def test_a_failed_setup_after_a_join_is_reaped_too(controller, unique, monkeypatch):
    net = controller.create_network(f"t{unique}", subnet=unique.subnet())
    other = controller.create_network(f"u{unique}", subnet=unique.subnet())
    ip = str(ipaddress.ip_network(other.subnet).network_address + 9)
    controller.setup_sandbox(secrets.token_hex(32), f"a{unique}", [Attachment(other.name, ip=ip)])
    tag = f"netcore:{controller.tag}:"
    with netns.host() as ipr:
        before = {lk.name for lk in links.owned(ipr, tag)}
    with pytest.raises(NetcoreError):
        controller.setup_sandbox(secrets.token_hex(32), f"b{unique}", [Attachment(net.name), Attachment(other.name, ip=ip)])

    def settled() -> bool:
        with netns.host() as ipr:
            return {lk.name for lk in links.owned(ipr, tag)} == before

    assert eventually(settled)
    assert controller.endpoints(net) == []


# ============================================================ sockets ========


def test_a_container_setup_opens_one_netlink_socket_in_its_netns(controller, unique, monkeypatch):
    import pyroute2

    net = controller.create_network(f"t{unique}", subnet=unique.subnet())
    controller.setup_sandbox(secrets.token_hex(32), f"w{unique}", [Attachment(net.name)])  # the host's socket is warm
    made, closed = [], []
    real = pyroute2.IPRoute

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

        def close(self, *a, **kw):
            closed.append(self)
            return super().close(*a, **kw)

    monkeypatch.setattr(pyroute2, "IPRoute", Counting)
    sid = secrets.token_hex(32)
    controller.setup_sandbox(sid, f"c{unique}", [Attachment(net.name)])
    assert len(made) == 1 and closed == made  # lo, the address, the link, the default route: one socket, closed
    controller.teardown_sandbox(sid)
    assert len(made) == 1


def test_a_session_shares_and_closes_its_sockets(unique):
    with netns.session():
        path = netns.create(f"nct-{unique}")
        try:
            with netns.netlink(path) as a, netns.netlink(path) as b:
                assert a is b  # the socket create brought lo up with
        finally:
            netns.delete(path)  # closes it: a netns made again under the same name gets a new one
        path = netns.create(f"nct-{unique}")
        with netns.netlink(path) as c:
            assert c is not a
    try:
        with netns.netlink(path) as d, netns.netlink(path) as e:
            assert d is not e and d is not c  # no session: one socket per use
    finally:
        netns.delete(path)


def test_lookup_by_ioctl_answers_for_the_sockets_own_netns(unique):
    from pyroute2 import IPRoute

    with netns.session():
        path = netns.create(f"nct-{unique}")
        try:
            with netns.netlink(path) as ipr:
                links.create_veth(ipr, f"nct{unique}a", f"nct:{unique}", peer_name=f"nct{unique}b")
                by_netlink = ipr.link_lookup(ifname=f"nct{unique}b")[0]
                assert netns.ifindex(ipr, f"nct{unique}b") == by_netlink == links.lookup(ipr, f"nct{unique}b")
                assert links.lookup(ipr, "nosuch0") is None
                with netns.host() as host:
                    assert links.lookup(host, f"nct{unique}b") is None  # not in the host's netns
            stale = netns.iproute(path)  # open (so its netns and that netns's inode number stay taken)
        finally:
            netns.delete(path)
        path = netns.create(f"nct-{unique}")  # the same path, another netns: the old socket must not ask it
        try:
            with pytest.raises(LookupError):
                netns.ifindex(stale, "lo")
        finally:
            stale.close()
            netns.delete(path)
    with IPRoute() as raw:  # not made by netns.py: netlink answers
        with pytest.raises(LookupError):
            netns.ifindex(raw, "lo")
        assert links.lookup(raw, "lo") == 1
