"""Forwarding names the embedded DNS does not own to the sandbox's upstream resolvers.

Upstreams are tried one after the other (at most three, like Docker and glibc).
Each attempt uses a fresh *connected* socket: a connected UDP socket reports the
ICMP "port unreachable" of a dead upstream as ECONNREFUSED, so the client gets
SERVFAIL at once instead of timing out, and a random source port per query makes
spoofed answers hard. A non-loopback upstream is dialled from inside the
sandbox's netns (it reaches the world through the sandbox's own routes and NAT,
as Docker does); a loopback one (e.g. systemd-resolved's 127.0.0.53) from the
engine's namespace, where it lives. A silent upstream costs at most its share of
``deadline`` (~2 s for all of them together); then SERVFAIL.

The upstream's answer is relayed byte for byte except for the two-byte message id,
which is put back to the client's (the query went out with a fresh random id).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.rcode

from netcore.dns.server import Loop
from netcore.osl import netns

__all__ = ["MAX_UPSTREAMS", "DEADLINE", "MAX_PENDING", "Upstream", "Forwarder", "read_nameservers", "upstreams_for"]

log = logging.getLogger("netcore.dns")

MAX_UPSTREAMS = 3  # resolv.conf's MAXNS: the client would not try more either
DEADLINE = 2.0  # seconds for one forwarded query, all upstreams together
MAX_PENDING = 1024  # forwarded queries in flight, engine-wide (Docker's limit); beyond: REFUSED


@dataclass(frozen=True)
class Upstream:
    """One resolver to forward to; ``from_host``: dial it from the engine's namespace."""

    ip: str
    port: int = 53
    from_host: bool = False

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.ip else socket.AF_INET


def read_nameservers(path: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order (a missing file: none)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        log.warning("dns: cannot read %s: %s; names that are not local will get SERVFAIL", path, exc)
        return []
    out: list[str] = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            addr = fields[1].split("%")[0]  # fe80::1%eth0: the zone means nothing in a container
            try:
                if ipaddress.ip_address(addr).is_link_local:
                    continue
            except ValueError:
                continue
            out.append(addr)
    return out


def upstreams_for(sandbox_servers: Sequence[str], host_servers: Sequence[str]) -> tuple[Upstream, ...]:
    """The sandbox's own servers (``--dns``) if any, else the host's; the first three valid ones."""
    out: list[Upstream] = []
    for server in sandbox_servers or host_servers:
        try:
            ip = ipaddress.ip_address(server)
        except ValueError:
            log.warning("dns: ignoring invalid upstream %r", server)
            continue
        out.append(Upstream(str(ip), from_host=ip.is_loopback))
        if len(out) == MAX_UPSTREAMS:
            break
    return tuple(out)


class Forwarder:
    """Runs forwarded queries on the loop; counts them to bound memory."""

    def __init__(self, loop: Loop, deadline: float = DEADLINE, max_pending: int = MAX_PENDING) -> None:
        self.loop = loop
        self.deadline = deadline
        self.max_pending = max_pending
        self.pending = 0

    def start(
        self,
        query: dns.message.Message,
        wire: bytes,
        upstreams: Sequence[Upstream],
        netns_path: str | None,
        owner: str,
        reply: Callable[[bytes], None],
        tcp: bool = False,
    ) -> None:
        """Forward ``wire`` (the client's query, parsed as ``query``); ``reply`` gets the answer."""
        if self.pending >= self.max_pending:
            reply(_error(query, dns.rcode.REFUSED))
            return
        _Exchange(self, query, wire, tuple(upstreams), netns_path, owner, reply, tcp).next()


class _Exchange:
    """One forwarded query: one upstream at a time, each on a fresh socket."""

    def __init__(
        self,
        fwd: Forwarder,
        query: dns.message.Message,
        wire: bytes,
        upstreams: tuple[Upstream, ...],
        netns_path: str | None,
        owner: str,
        reply: Callable[[bytes], None],
        tcp: bool,
    ) -> None:
        self.fwd, self.query, self.upstreams, self.netns_path = fwd, query, upstreams, netns_path
        self.owner, self._reply, self.tcp = owner, reply, tcp
        self.client_id = query.id
        self.upstream_id = secrets.randbits(16)
        self.wire = struct.pack("!H", self.upstream_id) + wire[2:]
        self.expires = time.monotonic() + fwd.deadline
        self.share = fwd.deadline / max(1, len(upstreams))
        self.i = 0
        self.sock: socket.socket | None = None
        self.deadline: float | None = None
        self._out = b""
        self._in = b""
        self._done = False
        fwd.pending += 1

    # ------------------------------------------------------------ attempts ----

    def next(self) -> None:
        """Try the next upstream, or answer SERVFAIL when none is left or time is up."""
        self._drop_socket()
        while self.i < len(self.upstreams) and time.monotonic() < self.expires:
            up = self.upstreams[self.i]
            self.i += 1
            try:
                self._dial(up)
                return
            except Exception as exc:  # the netns is gone, no route, ...
                log.debug("dns: upstream %s: %s", up.ip, exc)
                self._drop_socket()
        self._finish(_error(self.query, dns.rcode.SERVFAIL))

    def _dial(self, up: Upstream) -> None:
        kind = socket.SOCK_STREAM if self.tcp else socket.SOCK_DGRAM
        with netns.entered(None if up.from_host else self.netns_path):
            self.sock = socket.socket(up.family, kind)
        self.sock.setblocking(False)
        self.deadline = min(self.expires, time.monotonic() + self.share)
        if self.tcp:
            self._out = struct.pack("!H", len(self.wire)) + self.wire
            self._in = b""
            err = self.sock.connect_ex((up.ip, up.port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, f"connect: {errno.errorcode.get(err, err)}")
            self.fwd.loop.add(self, selectors.EVENT_WRITE)
        else:
            self.sock.connect((up.ip, up.port))
            self.sock.send(self.wire)
            self.fwd.loop.add(self, selectors.EVENT_READ)

    # ------------------------------------------------------------ loop events -

    def on_ready(self, mask: int) -> None:
        if self.tcp and mask & selectors.EVENT_WRITE:
            self._write()
        elif self.tcp:
            self._read_tcp()
        else:
            self._read_udp()

    def _read_udp(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ECONNREFUSED (ICMP port unreachable), EHOSTUNREACH, ...
            log.debug("dns: upstream %s: %s", self.upstreams[self.i - 1].ip, exc)
            self.next()
            return
        self._answer(data)

    def _write(self) -> None:
        assert self.sock is not None
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.next()
            return
        try:
            sent = self.sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.next()
            return
        self._out = self._out[sent:]
        if not self._out:
            self.fwd.loop.modify(self, selectors.EVENT_READ)

    def _read_tcp(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(65537)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # closed before a whole answer came
            self.next()
            return
        self._in += data
        if len(self._in) >= 2:
            (size,) = struct.unpack("!H", self._in[:2])
            if len(self._in) >= 2 + size:
                self._answer(self._in[2 : 2 + size])

    def _answer(self, data: bytes) -> None:
        """Relay a real answer; try the next upstream on SERVFAIL/REFUSED; ignore junk."""
        try:
            head = dns.message.from_wire(data, question_only=True)
        except dns.exception.DNSException:
            if self.tcp:
                self.next()
            return
        self.query.id = self.upstream_id
        try:
            ours = self.query.is_response(head)
        finally:
            self.query.id = self.client_id
        if not ours:
            if self.tcp:
                self.next()
            return
        if head.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
            self.next()
            return
        self._finish(struct.pack("!H", self.client_id) + data[2:])

    def on_timeout(self) -> None:
        self.next()

    # ------------------------------------------------------------ the end -----

    def _drop_socket(self) -> None:
        if self.sock is not None:
            self.fwd.loop.remove(self)
            self.sock.close()
            self.sock = None
            self.deadline = None

    def _finish(self, wire: bytes) -> None:
        self.close()
        self._reply(wire)

    def close(self) -> None:
        """Release the socket; called by the loop too when the sandbox goes."""
        self._drop_socket()
        if not self._done:
            self._done = True
            self.fwd.pending -= 1


def _error(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    return response.to_wire()
