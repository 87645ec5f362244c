"""Answering one query from the name index: a local answer, or where to forward it.

Pure with respect to the network: ``handle`` looks at the index and returns either
a response message or a ``Forward`` decision, so it is unit-tested by feeding it
dnspython messages.

Local semantics (Docker's, see docs/architecture.md "Embedded DNS"):
- A (and ANY) for a known name: its addresses, TTL 600; any other type for a known
  name: NOERROR with an empty answer (the name exists, it just has no such data).
- PTR for an address on one of the querier's networks: the container's name.
- An unknown single-label name: NXDOMAIN here, never forwarded. Containers get
  ``options ndots:0``, so a resolver asks for a bare name first and tries its
  search domains next; a bare name is never a public name, and forwarding it would
  only leak container names to the upstream and cost a round trip.
- Anything else unknown: forwarded to the sandbox's upstreams; SERVFAIL when it has
  none, or when all its resolution-enabled networks are internal.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from netcore.dns.forward import Upstream, upstreams_for
from netcore.dns.records import NameIndex

__all__ = ["TTL", "Forward", "handle", "respond", "encode"]

TTL = 600  # Docker's TTL for container records
_REVERSE_ZONES = (dns.reversename.ipv4_reverse_domain, dns.reversename.ipv6_reverse_domain)


@dataclass(frozen=True)
class Forward:
    """Not ours: ask these upstreams, from this sandbox's netns."""

    upstreams: tuple[Upstream, ...]
    netns_path: str | None


def respond(query: dns.message.Message, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, authoritative: bool = False) -> dns.message.Message:
    """An empty response to ``query`` with ``rcode``; RA set, since the server forwards."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    if authoritative:
        response.flags |= dns.flags.AA
    response.set_rcode(rcode)
    return response


def encode(response: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
    """Wire form, truncated (TC set) to what a UDP client said it can take."""
    if tcp:
        return response.to_wire()
    limit = max(512, query.payload) if query.edns >= 0 else 512
    return response.to_wire(max_size=limit, prefer_truncation=True)


def _reverse_ip(name: dns.name.Name) -> str | None:
    if not any(name.is_subdomain(zone) for zone in _REVERSE_ZONES):
        return None
    try:
        return dns.reversename.to_address(name)
    except (ValueError, dns.exception.SyntaxError):
        return None


def handle(
    index: NameIndex, sandbox_id: str, query: dns.message.Message, host_servers: tuple[str, ...] | list[str] = ()
) -> dns.message.Message | Forward:
    """Answer ``query`` asked from ``sandbox_id``, or say where to forward it."""
    if query.opcode() != dns.opcode.QUERY:
        return respond(query, dns.rcode.NOTIMP)
    if len(query.question) != 1:
        return respond(query, dns.rcode.FORMERR)
    sandbox = index.sandbox(sandbox_id)
    if sandbox is None:  # its last endpoint left while the query was queued
        return respond(query, dns.rcode.REFUSED)
    q = query.question[0]
    if q.rdclass == dns.rdataclass.IN:
        ip = _reverse_ip(q.name)
        if ip is not None:
            target = index.reverse(sandbox_id, ip)
            if target is not None:
                response = respond(query, authoritative=True)
                if q.rdtype in (dns.rdatatype.PTR, dns.rdatatype.ANY):
                    ptr = dns.rrset.from_text(q.name, TTL, dns.rdataclass.IN, dns.rdatatype.PTR, dns.name.from_text(target).to_text())
                    response.answer.append(ptr)
                return response
        else:
            addresses = index.lookup(sandbox_id, q.name.to_text(omit_final_dot=True))
            if addresses is not None:
                response = respond(query, authoritative=True)
                if q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                    response.answer.append(dns.rrset.from_text_list(q.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, addresses))
                return response
    if len(q.name.labels) == 2:  # one label and the root: a bare name
        return respond(query, dns.rcode.NXDOMAIN, authoritative=True)
    upstreams = upstreams_for(sandbox.dns_servers, host_servers)
    if not upstreams or index.internal_only(sandbox_id):
        return respond(query, dns.rcode.SERVFAIL)
    return Forward(upstreams, sandbox.netns_path)
