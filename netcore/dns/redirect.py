"""Port 53 of 127.0.0.11 inside a sandbox, redirected to the resolver's real ports.

The resolver's sockets are bound to 127.0.0.11 on ports the kernel picks, and a
small nat table in the sandbox's netns sends ``127.0.0.11:53`` there, as Docker
does. Binding port 53 itself would take it from the container: a DNS server in it
(dnsmasq, CoreDNS) could no longer bind ``0.0.0.0:53``. Replies need no rule:
conntrack rewrites their source back to port 53.
"""

from __future__ import annotations

from typing import Any

from netcore.osl.nft import Firewall, cmd, rule

__all__ = ["TABLE", "program"]

TABLE = "netcore-dns"


def _match(proto: str, field: str, value: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}}, "right": value}}


def commands(address: str, udp_port: int, tcp_port: int, family: str = "inet") -> list[dict[str, Any]]:
    """The table, replaced whole (an engine restart brings new ports)."""
    t = TABLE
    out = [
        cmd("add", "table", family=family, name=t),
        cmd("flush", "table", family=family, name=t),
        cmd("add", "chain", family=family, table=t, name="output", type="nat", hook="output", prio=-100, policy="accept"),
    ]
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        out.append(
            rule(family, t, "output", _match("ip", "daddr", address), _match(proto, "dport", 53),
                 {"dnat": {"family": "ip", "addr": address, "port": port}})
        )
    return out


def program(netns_path: str, address: str, udp_port: int, tcp_port: int) -> None:
    fw = Firewall(TABLE, netns_path=netns_path)
    try:
        fw.apply(commands(address, udp_port, tcp_port, fw.family))
    finally:
        fw.close()
