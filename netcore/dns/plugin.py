"""The embedded DNS as a core plugin: observer hooks keep the index and the sockets in step.

The engine registers it like any plugin:
``on_host(root, plugins=[("dns", EmbeddedDns(resolv_conf="/etc/resolv.conf"))])``.
A sandbox gets a resolver on 127.0.0.11:53 (UDP and TCP, inside its netns) from
its first resolution-enabled endpoint to its last; all of them are served by one
engine-wide thread. Hooks run on the controller's thread after the operation
committed, so the index changes before the operation returns: no stale record.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dns.exception
import dns.message
import dns.rcode

from netcore.dns.forward import MAX_UPSTREAMS, Forwarder, read_nameservers
from netcore.dns.query import TTL, Forward, encode, handle, respond
from netcore.dns.records import NameIndex, resolution_enabled
from netcore.dns import fastpath, redirect
from netcore.dns.server import ADDRESS, Loop, TcpListener, UdpListener, open_listeners
from netcore.hookspecs import hookimpl
from netcore.models import Endpoint, EngineContext, Network, Sandbox

__all__ = ["EmbeddedDns"]

log = logging.getLogger("netcore.dns")


class EmbeddedDns:
    """Docker's 127.0.0.11 resolver: container names per network, everything else forwarded."""

    def __init__(self, resolv_conf: str = "/etc/resolv.conf") -> None:
        self.resolv_conf = resolv_conf
        self.host_servers: tuple[str, ...] = ()
        self.index = NameIndex()
        self._lock = threading.Lock()  # the index; never held while taking the loop's lock
        self._loop: Loop | None = None
        self._forwarder: Forwarder | None = None
        self._listening: set[str] = set()  # sandboxes whose listeners are open

    # ------------------------------------------------------------ hooks -------

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        """Read the host's resolvers once: the upstreams of sandboxes without ``--dns``."""
        self.host_servers = tuple(read_nameservers(self.resolv_conf)[:MAX_UPSTREAMS])

    @hookimpl
    def endpoint_joined(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self._add(network, endpoint, sandbox)

    @hookimpl
    def endpoint_restored(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self._add(network, endpoint, sandbox)

    @hookimpl
    def endpoint_left(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        with self._lock:
            self.index.remove(endpoint.id)
            still = self.index.sandbox(sandbox.id) is not None
        if not still:
            self._close_sandbox(sandbox.id)

    @hookimpl
    def peer_joined(self, network: Network, endpoint: Endpoint) -> None:
        """A container on another host: its names resolve for ours on the same network."""
        if not network.predefined and endpoint.ip is not None:
            with self._lock:
                self.index.add_peer(network, endpoint)

    @hookimpl
    def peer_left(self, network: Network, endpoint: Endpoint) -> None:
        with self._lock:
            self.index.remove(endpoint.id)

    @hookimpl
    def network_deleted(self, network: Network) -> None:
        with self._lock:
            gone = {r.sandbox_id for r in self.index.drop_network(network.id)}
            gone = {sid for sid in gone if sid and self.index.sandbox(sid) is None}  # "": another host's
        for sid in gone:
            self._close_sandbox(sid)

    @hookimpl
    def shutdown(self) -> None:
        """Close every socket and stop the thread; a later join starts afresh."""
        if self._loop is not None:
            self._loop.stop()  # joins the thread first: no query is being served after this
        self._loop, self._forwarder = None, None
        self._listening.clear()
        with self._lock:
            self.index = NameIndex()

    # ------------------------------------------------------------ queries -----

    def handle(self, sandbox_id: str, query: dns.message.Message) -> dns.message.Message | Forward:
        """Answer ``query`` from ``sandbox_id`` locally, or say where to forward it."""
        with self._lock:
            return handle(self.index, sandbox_id, query, self.host_servers)

    def serve(self, sandbox_id: str, wire: bytes, reply: Callable[[bytes], None], tcp: bool) -> None:
        """One query off a socket (on the loop's thread): answer it now or start forwarding it."""
        with self._lock:
            fast = fastpath.answer_a(wire, lambda name: self.index.lookup(sandbox_id, name), TTL)
        if fast is not None:
            reply(fast)
            return
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException as exc:  # not DNS, or mangled: nothing to answer to
            log.debug("dns: dropping a malformed query from sandbox %s: %s", sandbox_id[:12], exc)
            return
        try:
            result = self.handle(sandbox_id, query)
            if isinstance(result, Forward):
                assert self._forwarder is not None
                self._forwarder.start(query, wire, result.upstreams, result.netns_path, sandbox_id, reply, tcp)
            else:
                reply(encode(result, query, tcp))
        except Exception:  # a bug must cost one query, never the sandbox's listener
            log.exception("dns: query from sandbox %s failed", sandbox_id[:12])
            reply(encode(respond(query, dns.rcode.SERVFAIL), query, tcp))

    # ------------------------------------------------------------ internals ---

    def _add(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        if not resolution_enabled(network, sandbox) or endpoint.ip is None:
            return
        with self._lock:
            self.index.add(network, endpoint, sandbox)
        if sandbox.id not in self._listening:
            self._open_sandbox(sandbox)

    def _open_sandbox(self, sandbox: Sandbox) -> None:
        udp, tcp = open_listeners(sandbox.netns_path, port=0)
        try:
            redirect.program(sandbox.netns_path, ADDRESS, udp.getsockname()[1], tcp.getsockname()[1])
        except BaseException:
            udp.close()
            tcp.close()
            raise
        if self._loop is None:
            self._loop = Loop()
            self._forwarder = Forwarder(self._loop)
        try:
            self._loop.add(UdpListener(udp, sandbox.id, self.serve))
        except BaseException:
            udp.close()
            tcp.close()
            raise
        try:
            self._loop.add(TcpListener(tcp, sandbox.id, self.serve, self._loop))
        except BaseException:
            tcp.close()
            self._loop.close_owner(sandbox.id)
            raise
        self._listening.add(sandbox.id)

    def _close_sandbox(self, sandbox_id: str) -> None:
        self._listening.discard(sandbox_id)
        if self._loop is not None:
            self._loop.close_owner(sandbox_id)

    def sockets(self, sandbox_id: str) -> int:
        """How many sockets are open for a sandbox (listeners, connections, forwards)."""
        return self._loop.count(sandbox_id) if self._loop is not None else 0
