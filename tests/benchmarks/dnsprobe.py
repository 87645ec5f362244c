"""One DNS A query at a time over UDP, timed; run inside a container's netns via nsenter.

    python -m tests.benchmarks.dnsprobe --server 127.0.0.11 --name web --count 50

A raw socket instead of a resolver library keeps the number to one round trip, and no
process start-up is counted. Prints JSON: milliseconds per query and the answer seen.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time


def query(name: str) -> tuple[int, bytes]:
    qid = int.from_bytes(os.urandom(2), "big")
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return qid, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)


def first_a(resp: bytes) -> str | None:
    """The first A record of an answer (enough to check the name resolved)."""
    an = struct.unpack("!H", resp[6:8])[0]
    i = 12
    while resp[i]:
        i += resp[i] + 1
    i += 5
    for _ in range(an):
        if resp[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while resp[i]:
                i += resp[i] + 1
            i += 1
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", resp[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            return socket.inet_ntoa(resp[i:i + 4])
        i += rdlen
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--count", type=int, default=50)
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    times, answer, errors = [], None, 0
    for _ in range(a.count):
        qid, pkt = query(a.name)
        t0 = time.perf_counter()
        try:
            s.sendto(pkt, (a.server, 53))
            while True:
                resp, _ = s.recvfrom(4096)
                if resp[:2] == qid.to_bytes(2, "big"):
                    break
        except OSError:
            errors += 1
            continue
        times.append((time.perf_counter() - t0) * 1000)
        answer = first_a(resp) or answer
    json.dump({"ms": times, "answer": answer, "errors": errors}, sys.stdout)


if __name__ == "__main__":
    main()
