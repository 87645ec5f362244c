"""Published ports through the core's API: all or nothing, and the gateway endpoint's hand-over."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess

import pytest

from cli_engine import free_port
from netcore import Attachment, PortBinding, names
from netcore.errors import Conflict, NetcoreError

pytestmark = pytest.mark.root


def published(controller) -> dict[int, str]:
    """host port -> container address, as the engine's ``any_addr`` map holds them."""
    out = subprocess.run(["nft", "-j", "list", "map", "inet", names.table_name(controller.root), "any_addr"], capture_output=True, text=True, check=True)
    elems = json.loads(out.stdout)["nftables"][1]["map"].get("elem", [])
    return {key["concat"][1]: addr for key, addr in elems}


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("", port))
            return True
        except OSError:
            return False


def default_dev(sandbox) -> str:
    out = subprocess.run(["nsenter", f"--net={sandbox.netns_path}", "ip", "-4", "route", "show", "default"], capture_output=True, text=True)
    return out.stdout.split()[4]


def test_a_failed_start_leaves_no_port_behind(controller, unique, monkeypatch):
    net = controller.create_network(f"p{unique}", subnet=unique.subnet())
    p1, p2 = free_port(), free_port()
    controller.setup_sandbox(secrets.token_hex(32), f"a{unique}", [Attachment(net.name)], ports=[PortBinding(80, host_port=p1)])
    before = published(controller)
    assert p1 in before and not bindable(p1)

    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "endpoint.store")
    with pytest.raises(NetcoreError, match="injected"):
        controller.setup_sandbox(secrets.token_hex(32), f"b{unique}", [Attachment(net.name)], ports=[PortBinding(80, host_port=p2)])
    assert published(controller) == before
    assert bindable(p2)

    monkeypatch.delenv("NETCORE_TEST_FAIL_STEP")
    with pytest.raises(Conflict, match="port is already allocated"):  # and the same all-or-nothing for a taken port
        controller.setup_sandbox(secrets.token_hex(32), f"c{unique}", [Attachment(net.name)], ports=[PortBinding(81, host_port=p2), PortBinding(80, host_port=p1)])
    assert published(controller) == before and bindable(p2)


def test_gateway_hand_over_and_its_rollback(controller, unique, monkeypatch):
    a = controller.create_network(f"a{unique}", subnet=unique.subnet())
    b = controller.create_network(f"b{unique}", subnet=unique.subnet())
    port = free_port()
    sb = controller.setup_sandbox(secrets.token_hex(32), f"s{unique}", [Attachment(a.name)], ports=[PortBinding(80, host_port=port)])
    (ep_a,) = controller.sandbox_endpoints(sb)
    assert published(controller)[port] == ep_a.ip and default_dev(sb) == "eth0"

    monkeypatch.setenv("NETCORE_TEST_FAIL_STEP", "endpoint.store")
    with pytest.raises(NetcoreError, match="injected"):
        controller.connect(b.name, sb.id, gw_priority=1)
    sb = controller.sandbox(sb.id)
    assert [e.network_id for e in controller.sandbox_endpoints(sb)] == [a.id]
    assert sb.gateway_endpoint == ep_a.id and default_dev(sb) == "eth0"
    assert published(controller)[port] == ep_a.ip and not bindable(port)

    monkeypatch.delenv("NETCORE_TEST_FAIL_STEP")
    ep_b = controller.connect(b.name, sb.id, gw_priority=1)
    sb = controller.sandbox(sb.id)
    assert sb.gateway_endpoint == ep_b.id and default_dev(sb) == "eth1"
    assert published(controller)[port] == ep_b.ip and not bindable(port)
    assert [e.ports for e in controller.sandbox_endpoints(sb)] == [[], [PortBinding(80, host_port=port)]]

    controller.disconnect(b.name, sb.id)
    sb = controller.sandbox(sb.id)
    assert sb.gateway_endpoint == ep_a.id and default_dev(sb) == "eth0"
    assert published(controller)[port] == ep_a.ip

    controller.teardown_sandbox(sb.id)
    assert port not in published(controller) and bindable(port)
