"""CNI on fakes and as data: the core's external netns and named interfaces, the plugin's
result shapes and conflists. The executable against a real engine and podman is in
tests/integration/test_cni_plugin.py and test_cni_podman.py."""

from __future__ import annotations

import pytest

from netcore.controller import ENDPOINT, SANDBOX
from netcore.errors import AlreadyExists
from netcore.models import Attachment
from runtime.cni import conflist as cl
from runtime.cni import plugin
from tests.unit.test_controller_logic import Engine


@pytest.fixture
def eng(tmp_path):
    e = Engine(str(tmp_path))
    yield e
    e.c.reset()
    e.c.close()


def test_an_external_netns_is_used_and_never_deleted(eng):
    net = eng.net("a", "10.10.0.0/24")
    eng.net("b", "10.11.0.0/24")
    eng.net("c", "10.12.0.0/24")
    path = eng.kernel.create_netns("runtime-ns")  # the CNI runtime's
    sb = eng.c.setup_sandbox("cid1", "web", [Attachment("a", ifname="net0")], netns_path=path)
    assert sb.netns_path == path and sb.external
    assert eng.kernel.link(path, "net0").addresses == ["10.10.0.2/24"]
    ep = eng.c.connect("b", "cid1", ifname="net1")
    assert ep.ifname == "net1" and eng.kernel.link(path, "net1") is not None
    with pytest.raises(AlreadyExists, match="already has an interface net1"):
        eng.c.connect("c", "cid1", ifname="net1")
    eng.c.teardown_sandbox("cid1")
    assert eng.kernel.netns_exists(path)  # the runtime's to delete
    assert ("leave", "a", "web") in eng.log and ("leave", "b", "web") in eng.log  # the driver takes the interfaces out
    assert eng.store.count(ENDPOINT) == 0 and eng.store.count(SANDBOX) == 0
    eng.kernel.delete_netns(path)


def test_reconcile_forgets_an_external_sandbox_whose_netns_is_gone(eng):
    eng.net("a", "10.10.0.0/24")
    path = eng.kernel.create_netns("runtime-ns")
    eng.c.setup_sandbox("cid1", "web", [Attachment("a")], netns_path=path)
    eng.kernel.delete_netns(path)
    eng.c.reconcile()
    assert eng.store.count(ENDPOINT) == 0 and eng.store.count(SANDBOX) == 0


ATT = {"interface": {"name": "eth0", "mac": "02:42:0a:00:00:02", "sandbox": "/run/netns/x"}, "address": "10.0.0.2/24",
       "gateway": "10.0.0.1", "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}], "dns": {"nameservers": ["127.0.0.11"]}}


def test_the_result_takes_the_shape_of_the_requested_version():
    one = plugin._result(ATT, "1.0.0", None)
    assert one == {"cniVersion": "1.0.0", "interfaces": [ATT["interface"]],
                   "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 0}],
                   "routes": ATT["routes"], "dns": ATT["dns"]}
    old = plugin._result(ATT, "0.4.0", None)
    assert old["ips"][0]["version"] == "4" and old["cniVersion"] == "0.4.0"


def test_the_result_follows_an_earlier_plugins():
    prev = {"interfaces": [{"name": "cni0"}], "ips": [{"address": "10.9.0.2/24", "interface": 0}], "routes": []}
    res = plugin._result(ATT, "1.0.0", prev)
    assert [i["name"] for i in res["interfaces"]] == ["cni0", "eth0"]
    assert res["ips"][1]["interface"] == 1 and res["ips"][0] == prev["ips"][0]


def test_conflist_versions():
    lst = cl.conflist("web", "/run/netcore/netcore.sock")
    assert lst["cniVersion"] == "1.0.0" and lst["plugins"][0]["type"] == "netcore-cni"
    assert cl.conflist("web", "/s", "0.4.0")["cniVersion"] == "0.4.0"
    with pytest.raises(ValueError, match="2.0.0"):
        cl.conflist("web", "/s", "2.0.0")
    # podman 4.3 drops a network whose version the plugin does not list verbatim
    assert {"0.3.0", "0.3.1", "0.4.0", "1.0.0"} <= set(cl.SUPPORTED)


def test_wire_json_agrees_with_the_json_package():
    import json

    from runtime.cni import wire

    doc = {"a": [1, 2.5, "x\u00e9\"\n", None, True, False, {"b": {}}], "c": "", "d": -3}
    assert json.loads(wire.dumps(doc)) == doc
    assert wire.loads(json.dumps(doc, indent=2) + "\n") == doc
    assert wire.loads(b' {"k": "v"} ') == {"k": "v"}
    for bad in ("", "{nope", '{"a": 1} x', "[1,"):
        with pytest.raises(ValueError):
            wire.loads(bad)
    with pytest.raises(TypeError):
        wire.dumps({"s": {1, 2}})
