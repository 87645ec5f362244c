"""Cluster sync between two engines in one process: a shared ``MemoryStore`` stands in
for etcd (its leases, create and watches), each engine on its own fakes.

The same flows run against a real etcd in tests/integration (test_cluster*.py).
"""

from __future__ import annotations

import pytest

from netcore.cluster import Cluster
from netcore.controller import Controller
from netcore.dns.records import NameIndex
from netcore.hookspecs import hookimpl
from netcore.models import Attachment, Endpoint, Network, Sandbox
from netcore.osl.fake import FakeKernel
from netcore.osl.nftnone import NoFirewall
from netcore.store.memory import MemoryStore
from tests.unit.fakedriver import FakeDriver


class Peers:
    """The embedded DNS's records (its ``NameIndex``), local and other hosts' containers, from the notifications."""

    def __init__(self) -> None:
        self.index = NameIndex()

    @hookimpl
    def endpoint_joined(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self.index.add(network, endpoint, sandbox)

    @hookimpl
    def endpoint_left(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self.index.remove(endpoint.id)

    @hookimpl
    def peer_joined(self, network: Network, endpoint: Endpoint) -> None:
        self.index.add_peer(network, endpoint)

    @hookimpl
    def peer_left(self, network: Network, endpoint: Endpoint) -> None:
        self.index.remove(endpoint.id)


class Host:
    def __init__(self, root: str, address: str, etcd: MemoryStore) -> None:
        self.log: list[tuple[str, ...]] = []
        self.kernel = FakeKernel()
        self.driver = FakeDriver(self.kernel, self.log, scope="global")
        self.peers = Peers()
        self.cluster = Cluster("memory://", address, store=etcd)
        self.c = Controller(
            root,
            store=MemoryStore(),
            firewall=NoFirewall(),
            kernel=self.kernel,
            plugins=[("fake", self.driver), ("peers", self.peers)],
            autoload=False,
            cluster=self.cluster,
        )
        self.c.start()

    def peer_calls(self) -> list[tuple[str, ...]]:
        return [e for e in self.log if e[0].startswith("peer_")]


@pytest.fixture
def hosts(tmp_path):
    etcd = MemoryStore()
    a = Host(str(tmp_path / "a"), "192.0.2.1", etcd)
    b = Host(str(tmp_path / "b"), "192.0.2.2", etcd)
    yield a, b, etcd
    for h in (a, b):
        h.c.reset()
        h.c.close()


def test_a_global_network_appears_on_the_other_host_and_goes_with_its_delete(hosts):
    a, b, etcd = hosts
    net = a.c.create_network("ov", "fake", subnet="10.77.0.0/24")
    etcd.deliver()  # etcd's watch thread
    assert b.c.network("ov").id == net.id and b.c.network("ov").subnet == "10.77.0.0/24"
    a.c.delete_network("ov")
    etcd.deliver()  # etcd's watch thread
    assert [n.name for n in b.c.networks()] == []
    assert ("delete_network", "ov") in b.log  # b's driver let go of its side


def test_containers_on_one_host_are_peers_on_the_other(hosts):
    a, b, etcd = hosts
    a.c.create_network("ov", "fake", subnet="10.77.0.0/24")
    etcd.deliver()  # etcd's watch thread
    web = a.c.setup_sandbox("a" * 64, "web", [Attachment("ov", aliases=("www",))])
    etcd.deliver()  # etcd's watch thread
    (ep,) = a.c.sandbox_endpoints(web)
    assert ep.host == "192.0.2.1" and {"web", "www"} <= set(ep.dns_names)
    assert b.peer_calls() == [("peer_add", "ov", "web")] and a.peer_calls() == []  # not its own peer
    client = b.c.setup_sandbox("b" * 64, "client", [Attachment("ov")])
    etcd.deliver()  # etcd's watch thread
    assert b.peers.index.lookup(client.id, "www") == [ep.ip]  # the other host's container resolves here
    assert a.peer_calls() == [("peer_add", "ov", "client")]
    # the addresses come from one cluster-wide pool: no clash between hosts
    (cep,) = b.c.sandbox_endpoints(client)
    assert {ep.ip, cep.ip} == {"10.77.0.2", "10.77.0.3"}
    a.c.teardown_sandbox(web.id)
    etcd.deliver()  # etcd's watch thread
    assert b.peer_calls()[-1] == ("peer_delete", "ov", "web")
    assert b.peers.index.lookup(client.id, "www") is None
    assert [e.name for e in a.cluster.endpoints()] == ["client"]
    b.c.teardown_sandbox(client.id)
    etcd.deliver()  # etcd's watch thread
    assert a.peer_calls()[-1] == ("peer_delete", "ov", "client") and etcd.count("endpoint") == 0


def test_a_host_whose_lease_lapses_disappears_from_its_peers(hosts):
    a, b, etcd = hosts
    a.c.create_network("ov", "fake", subnet="10.77.0.0/24")
    etcd.deliver()  # etcd's watch thread
    a.c.setup_sandbox("a" * 64, "web", [Attachment("ov")])
    etcd.deliver()  # etcd's watch thread
    assert b.peer_calls() == [("peer_add", "ov", "web")]
    etcd.revoke_lease(a.cluster.lease)  # as when a's engine dies and its TTL runs out
    etcd.deliver()  # etcd's watch thread
    assert b.peer_calls()[-1] == ("peer_delete", "ov", "web")
    assert "192.0.2.1" not in b.cluster.nodes() and "192.0.2.2" in b.cluster.nodes()
