"""The EmbeddedDns plugin's parts that need no namespace: settings, validation, disabled endpoints."""

from __future__ import annotations

import dns.message
import dns.rcode

from netcore.dns import EmbeddedDns
from netcore.dns.forward import Upstream
from netcore.dns.query import Forward
from netcore.models import EngineContext, Endpoint, Network, Sandbox
from netcore.plugins import make_plugin_manager


def test_the_plugin_passes_hook_validation():
    pm = make_plugin_manager([("dns", EmbeddedDns())], autoload=False)
    assert pm.get_plugin("dns") is not None


def test_configure_reads_at_most_three_host_resolvers(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver 10.0.0.4\n")
    plugin = EmbeddedDns(resolv_conf=str(conf))
    plugin.configure(EngineContext(root=str(tmp_path), tag="abcdef", firewall=None))
    assert plugin.host_servers == ("10.0.0.1", "10.0.0.2", "127.0.0.53")


def test_endpoints_without_resolution_are_not_indexed_and_open_nothing(tmp_path):
    plugin = EmbeddedDns(resolv_conf=str(tmp_path / "none"))
    plugin.configure(EngineContext(root=str(tmp_path), tag="abcdef", firewall=None))
    bridge = Network(id="n1", name="bridge", driver="bridge", predefined=True)
    user = Network(id="n2", name="user", driver="bridge")
    in_netns = Sandbox(id="a" * 64, netns_path="/run/netns/x", name="a")
    on_host = Sandbox(id="b" * 64, netns_path=None, name="b")
    plugin.endpoint_joined(bridge, Endpoint(id="e1", network_id="n1", name="a", address="172.17.0.2/16"), in_netns)
    plugin.endpoint_joined(user, Endpoint(id="e2", network_id="n2", name="b", address="10.0.0.2/24"), on_host)
    assert len(plugin.index) == 0
    assert plugin.sockets(in_netns.id) == 0 and plugin.sockets(on_host.id) == 0
    plugin.shutdown()


def test_handle_answers_from_the_index_and_forwards_the_rest(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.0.0.1\n")
    plugin = EmbeddedDns(resolv_conf=str(conf))
    plugin.configure(EngineContext(root=str(tmp_path), tag="abcdef", firewall=None))
    net = Network(id="n", name="user", driver="bridge")
    sb = Sandbox(id="c" * 64, netns_path="/run/netns/x", name="web", endpoints=["e"])
    plugin.index.add(net, Endpoint(id="e", network_id="n", name="web", address="10.1.0.2/24"), sb)

    r = plugin.handle(sb.id, dns.message.make_query("web", "A"))
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "10.1.0.2"
    assert plugin.handle(sb.id, dns.message.make_query("example.org", "A")) == Forward((Upstream("10.0.0.1"),), "/run/netns/x")


def test_a_failing_query_costs_that_query_only(tmp_path, monkeypatch):
    plugin = EmbeddedDns(resolv_conf=str(tmp_path / "none"))

    def broken(sandbox_id, query):
        raise RuntimeError("bug")

    monkeypatch.setattr(plugin, "handle", broken)
    query = dns.message.make_query("web", "A")
    replies: list[bytes] = []
    plugin.serve("c" * 64, query.to_wire(), replies.append, False)
    (wire,) = replies
    r = dns.message.from_wire(wire)
    assert r.id == query.id and r.rcode() == dns.rcode.SERVFAIL
    plugin.serve("c" * 64, b"\x00\x01junk", replies.append, False)
    assert len(replies) == 1, "a datagram that is not DNS gets no answer"
