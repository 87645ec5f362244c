"""The kernel-side marks the packet tests (and the session leak check) rely on.

Not a scapy test: it checks that netcore's links carry the ``netcore:<tag>:<id>`` alias
(IFLA_IFALIAS) that reconcile uses to find its own objects, and that reconcile then
removes an orphan. It lives here because it found a bug while the packet suite was
written; it belongs in tests/integration.
"""

from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.root


def _alias(name: str) -> str | None:
    try:
        with open(f"/sys/class/net/{name}/ifalias") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def test_reconcile_removes_orphan_bridge(lab):
    c = lab.c
    net = lab.network()
    a = lab.box(net)
    br = lab.bridge(net)
    aliases = {br: _alias(br), a.veth: _alias(a.veth)}
    c.teardown_sandbox(a.sandbox.id)
    try:
        # as if the engine died after making the bridge and before committing the record
        c.store.delete("network", net.id)
        c.reconcile()
        survived = os.path.exists(f"/sys/class/net/{br}")
    finally:
        subprocess.run(["ip", "link", "del", br], capture_output=True)
    assert not survived, f"reconcile left the orphan bridge {br}; link aliases were {aliases}"
    assert aliases == {br: f"netcore:{c.tag}:{net.id}", a.veth: f"netcore:{c.tag}:{a.endpoint.id}"}
