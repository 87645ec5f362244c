"""A fake upstream DNS server for tests: ``python fake_dns.py ADDR LOG NAME=IP...``.

Answers A queries for the given names, NXDOMAIN for anything else, and appends
every query name to LOG, so a test can tell what reached the upstream. Runs inside
a test namespace; it stands in for the host's resolver, which tests never ask.
"""

from __future__ import annotations

import socket
import sys

import dns.message
import dns.rcode
import dns.rrset


def main() -> None:
    addr, log_path, *pairs = sys.argv[1:]
    names = {k.lower().rstrip(".") + ".": v for k, v in (p.split("=", 1) for p in pairs)}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    print("ready", flush=True)
    while True:
        wire, peer = sock.recvfrom(4096)
        query = dns.message.from_wire(wire)
        qname = query.question[0].name.to_text().lower()
        with open(log_path, "a") as log:
            log.write(qname + "\n")
        reply = dns.message.make_response(query)
        if qname in names:
            reply.answer.append(dns.rrset.from_text(qname, 60, "IN", "A", names[qname]))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(reply.to_wire(), peer)


if __name__ == "__main__":
    main()
