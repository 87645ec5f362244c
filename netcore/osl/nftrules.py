"""nftables rules as data: the JSON building blocks every driver's firewall module shares.

One place for the commands (``cmd``, ``rule``), the matches (interface, IPv4 address,
conntrack state and status), the verdicts, and the per-network pieces that bridge and
routed both write: the three chains of a network (``net-<id>-in/-out/-post``) and an
interface's elements in the engine table's isolation set and forward verdict maps.
Everything here only builds dicts; ``netcore.osl.nft.Firewall`` applies them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "cmd", "jump", "prefix", "rule",
    "meta_match", "ip_match", "ct_dnat", "ct_reply", "ACCEPT", "DROP", "RETURN", "MASQUERADE",
    "network_chains", "chain_heads", "interface_elements", "remove_interface",
]

Expr = dict[str, Any]

ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}
RETURN: Expr = {"return": None}
MASQUERADE: Expr = {"masquerade": None}


def cmd(verb: str, kind: str, **fields: Any) -> Expr:
    """One JSON command, e.g. ``cmd("add", "chain", family="inet", table="t", name="c")``."""
    return {verb: {kind: fields}}


def jump(chain: str) -> Expr:
    return {"jump": {"target": chain}}


def prefix(cidr: str) -> Expr:
    addr, length = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(length)}}


def rule(family: str, table: str, chain: str, *expr: Expr, comment: str | None = None) -> Expr:
    fields: dict[str, Any] = {"family": family, "table": table, "chain": chain, "expr": list(expr)}
    if comment:
        fields["comment"] = comment
    return {"add": {"rule": fields}}


def meta_match(key: str, op: str, right: Any) -> Expr:
    """``meta <key> <op> <right>``, e.g. ``oifname != "ncbr-x"`` or ``oifname @net_ifs``."""
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


def ip_match(field: str, right: Any, op: str = "==") -> Expr:
    """``ip <saddr|daddr> <op> <right>`` (an address, a prefix or a ``@set``)."""
    return {"match": {"op": op, "left": {"payload": {"protocol": "ip", "field": field}}, "right": right}}


def ct_dnat() -> Expr:
    """``ct status dnat``: the connection's destination was rewritten (a published port)."""
    return {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}


def ct_reply() -> Expr:
    """``ct state established,related``: replies to what was let through."""
    return {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}


def network_chains(network_id: str) -> tuple[str, str, str]:
    """A network's forward-in, forward-out and nat-postrouting chains."""
    short = network_id[:12]
    return f"net-{short}-in", f"net-{short}-out", f"net-{short}-post"


def chain_heads(family: str, table: str, chains: tuple[str, ...]) -> list[Expr]:
    """Create-or-empty each chain (add + flush), so programming can be replayed."""
    out: list[Expr] = []
    for chain in chains:
        out += [cmd("add", "chain", family=family, table=table, name=chain), cmd("flush", "chain", family=family, table=table, name=chain)]
    return out


def interface_elements(ifname: str, cin: str, cout: str, family: str, table: str) -> list[Expr]:
    """An interface of a network: in the isolation set, and its forward traffic dispatched to the network's chains."""
    return [
        cmd("add", "element", family=family, table=table, name="net_ifs", elem=[ifname]),
        cmd("add", "element", family=family, table=table, name="fwd_in", elem=[[ifname, jump(cin)]]),
        cmd("add", "element", family=family, table=table, name="fwd_out", elem=[[ifname, jump(cout)]]),
    ]


def remove_interface(ifname: str, family: str, table: str) -> list[Expr]:
    """The commands undoing ``interface_elements``, one per element."""
    return [cmd("delete", "element", family=family, table=table, name=name, elem=[ifname]) for name in ("net_ifs", "fwd_in", "fwd_out")]
