"""CNI on fakes and as data: the core's external netns and named interfaces, the plugin's
result shapes and conflists. The executable against a real engine and podman is in
tests/integration/test_cni_plugin.py and test_cni_podman.py."""

from __future__ import annotations

import pytest

from netcore.controller import ENDPOINT, SANDBOX
from netcore.errors import AlreadyExists, Conflict, NetcoreError, NotFound
from netcore.models import Attachment
from runtime.cni import conflist as cl
from runtime.cni import protocol
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
    one = protocol.result(ATT, "1.0.0", None)
    assert one == {"cniVersion": "1.0.0", "interfaces": [ATT["interface"]],
                   "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 0}],
                   "routes": ATT["routes"], "dns": ATT["dns"]}
    old = protocol.result(ATT, "0.4.0", None)
    assert old["ips"][0]["version"] == "4" and old["cniVersion"] == "0.4.0"


def test_the_result_follows_an_earlier_plugins():
    prev = {"interfaces": [{"name": "cni0"}], "ips": [{"address": "10.9.0.2/24", "interface": 0}], "routes": []}
    res = protocol.result(ATT, "1.0.0", prev)
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


def test_the_protocol_judges_what_the_forwarder_sends():
    """netcore-cni forwards env and stdin as they came: codes and shapes are decided here."""

    class Attachments:
        def add(self, cid, ifname, netns, network, **kw):
            self.added = (cid, ifname, netns, network, kw)
            return ATT

    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": "/proc/self/ns/net",
           "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.0.0.9"}
    att = Attachments()
    code, out = protocol.handle(env, '{"cniVersion": "0.4.0", "network": "n", "runtimeConfig": {"aliases": {"n": ["db"]}}}', att)
    assert code == 0 and out["cniVersion"] == "0.4.0" and out["ips"][0]["version"] == "4"
    assert att.added[:4] == ("c1", "eth0", "/proc/self/ns/net", "n") and att.added[4]["name"] == "web"
    assert att.added[4]["ip"] == "10.0.0.9" and att.added[4]["aliases"] == ["db"]
    for cfg, extra, want in [("{nope", {}, 6), ('{"cniVersion": "9.9.9"}', {}, 1), ("{}", {}, 7),
                             ('{"network": "n"}', {"CNI_COMMAND": "NOPE"}, 4), ('{"network": "n"}', {"CNI_IFNAME": "a" * 16}, 4),
                             ('{"network": "n"}', {"CNI_NETNS": "/run/netns/nct-none"}, 4),
                             ('{"network": "n", "runtimeConfig": {"portMappings": [{"containerPort": "x"}]}}', {}, 7),
                             ('{"network": "n", "socket": 5}', {}, 7)]:
        code, err = protocol.handle({**env, **extra}, cfg, att)
        assert code == 1 and set(err) == {"cniVersion", "code", "msg", "details"} and err["code"] == want, (cfg, extra, err)


def test_a_deferred_disconnect_forgets_first_and_leaves_when_run(eng):
    """CNI's DEL: the records and the address go at once; the driver's leave and
    delete_endpoint only when the deferrer runs what it was handed."""
    eng.net("a", "10.10.0.0/24")
    eng.net("b", "10.11.0.0/24")
    path = eng.kernel.create_netns("runtime-ns")
    eng.c.setup_sandbox("cid1", "web", [Attachment("a", ifname="eth0")], netns_path=path)
    eng.c.connect("b", "cid1", ifname="eth1")
    handed: list = []
    eng.c.disconnect("b", "cid1", defer=handed.append)
    assert len(handed) == 1 and ("leave", "b", "web") not in eng.log
    assert [e.ifname for e in eng.c.sandbox_endpoints(eng.c.sandbox("cid1"))] == ["eth0"]
    assert eng.c.endpoints(eng.c.network("b")) == []
    handed.pop()()
    assert ("leave", "b", "web") in eng.log
    eng.c.teardown_sandbox("cid1", defer=handed.append)
    assert eng.store.count(ENDPOINT) == 0 and eng.store.count(SANDBOX) == 0 and len(handed) == 1
    assert ("leave", "a", "web") not in eng.log
    for job in handed:
        job()
    assert ("leave", "a", "web") in eng.log
    eng.kernel.delete_netns(path)


def test_ports_are_published_per_attachment_and_go_with_its_disconnect(eng):
    """CNI: each ADD's portMappings DNAT to that attachment's address, not the default route's."""
    from netcore.models import PortBinding

    eng.net("a", "10.10.0.0/24")
    eng.net("b", "10.11.0.0/24")
    path = eng.kernel.create_netns("runtime-ns")
    eng.c.setup_sandbox("cid1", "web", [Attachment("a", ifname="eth0")], netns_path=path)
    eng.c.connect("b", "cid1", ifname="eth1")
    a = eng.c.publish_ports("a", "cid1", [PortBinding(container_port=80, host_port=18080)])
    b = eng.c.publish_ports("b", "cid1", [PortBinding(container_port=81, host_port=18081)])
    assert eng.firewall.published == {a.ports[0]: "10.10.0.2", b.ports[0]: "10.11.0.2"}
    with pytest.raises(Conflict):
        eng.c.publish_ports("b", "cid1", [PortBinding(container_port=82, host_port=18082)])
    eng.c.disconnect("b", "cid1")
    assert eng.firewall.published == {a.ports[0]: "10.10.0.2"}
    eng.c.teardown_sandbox("cid1")
    assert eng.firewall.published == {} and eng.c.ports.held() == 0
    eng.kernel.delete_netns(path)


def _call(command: str, cfg: str, att, **extra):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": "/proc/self/ns/net", **extra}
    return protocol.handle(env, cfg, att)


class _Adds:
    def add(self, cid, ifname, netns, network, **kw):
        return ATT

    def status(self, network):
        raise NotFound(f"network {network} not found")


def test_cni_args_refuses_unknown_keys_unless_ignore_unknown():
    """libcni's types.LoadArgs: an unknown key is an error unless IgnoreUnknown is true."""
    for args in ("FOO=bar", "IgnoreUnknown=0;FOO=bar", "IgnoreUnknown=false;K8S_POD_NAME=web;FOO=bar", "K8S_POD_NAME"):
        code, err = _call("ADD", '{"network": "n"}', _Adds(), CNI_ARGS=args)
        assert code == 1 and err["code"] == 4 and "ARGS" in err["msg"], (args, err)
    for args in ("IgnoreUnknown=1;FOO=bar", "IgnoreUnknown=true;FOO=bar", "K8S_POD_NAME=web;K8S_POD_NAMESPACE=x;IP=10.0.0.9", ""):
        code, out = _call("ADD", '{"network": "n"}', _Adds(), CNI_ARGS=args)
        assert code == 0 and out["ips"], (args, out)


def test_status_tells_a_missing_network_from_an_engine_refusal():
    code, err = _call("STATUS", '{"cniVersion": "1.1.0", "network": "n"}', _Adds())
    assert code == 1 and err["code"] == 51 and "not found" in err["msg"]

    class Broken(_Adds):
        def status(self, network):
            raise NetcoreError("the engine is shutting down")

    code, err = _call("STATUS", '{"cniVersion": "1.1.0", "network": "n"}', Broken())
    assert code == 1 and err["code"] == 50


def test_the_result_lists_the_host_side_before_the_container_interface():
    att = {**ATT, "host_interfaces": [{"name": "ncbr-1"}, {"name": "ncv-1"}]}
    res = protocol.result(att, "1.0.0", None)
    assert res["interfaces"] == [{"name": "ncbr-1"}, {"name": "ncv-1"}, ATT["interface"]]
    assert res["ips"][0]["interface"] == 2
