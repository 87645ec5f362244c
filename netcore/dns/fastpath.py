"""The common query answered without building dnspython messages: A for a container name.

Nearly every query a container sends its embedded DNS is the plain one glibc sends
for another container: one question, type A, class IN, no EDNS. Parsing it into a
``dns.message.Message`` and back costs several times the round trip itself, so this
reads the question straight off the wire and writes the answer with the question
copied as asked (case included). Anything else (other types, EDNS, PTR, unknown
names, malformed input) returns None and takes the full path in ``query.py``, which
defines the semantics this must match (tests/unit/test_dns_fastpath.py checks both
give the same answer).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

__all__ = ["answer_a"]

_HEADER = struct.Struct("!HHHHHH")
_ANSWER = struct.Struct("!HHHIH")  # name pointer, type, class, ttl, rdlength
_QTYPE_A, _QCLASS_IN = 1, 1
_UDP_LIMIT = 512


def answer_a(wire: bytes, lookup: Callable[[str], list[str] | None], ttl: int) -> bytes | None:
    """The response to a plain A query for a known name, or None (use the full path)."""
    if len(wire) < 17:
        return None
    ident, flags, qd, an, ns, ar = _HEADER.unpack_from(wire)
    if flags & 0xF800 or (qd, an, ns, ar) != (1, 0, 0, 0):  # a response, another opcode, or EDNS etc.
        return None
    labels, pos = [], 12
    while True:
        n = wire[pos]
        if n == 0:
            pos += 1
            break
        if n > 63 or pos + 1 + n > len(wire):  # compression or garbage: not a plain question
            return None
        labels.append(wire[pos + 1 : pos + 1 + n])
        pos += 1 + n
    if pos + 4 != len(wire) or not labels:
        return None
    qtype, qclass = struct.unpack_from("!HH", wire, pos)
    if qtype != _QTYPE_A or qclass != _QCLASS_IN:
        return None
    try:
        name = b".".join(labels).decode("ascii")
    except UnicodeDecodeError:
        return None
    if name.lower().endswith(".in-addr.arpa"):
        return None
    addresses = lookup(name)
    if not addresses:
        return None
    size = len(wire) + 16 * len(addresses)
    if size > _UDP_LIMIT:
        return None
    out = bytearray(_HEADER.pack(ident, 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080, 1, len(addresses), 0, 0))
    out += wire[12:]
    for ip in addresses:
        out += _ANSWER.pack(0xC00C, _QTYPE_A, _QCLASS_IN, ttl, 4) + socket.inet_aton(ip)
    return bytes(out)
