"""The routed network's nftables rules, as data.

No bridge: a routed network is many host-side veths (one per local container) and a
pool of addresses. Its chains are reached through the engine table's verdict maps,
one element per veth (``fwd_in``/``fwd_out``), and its pool is an element of
``net_pools`` (every routed pool the engine knows, local or remote) and of
``post_src``:

    net-<id>-in    packets forwarded from one of its veths
                     ct status dnat: accept             (published ports, not internal)
                     ip daddr <pool>: accept            (its own containers, here or on other hosts)
                     ip daddr @net_pools: drop          (other routed networks, wherever they are)
                     oifname @net_ifs: drop             (bridges and other networks' veths here)
                     internal: drop                     (no way out at all)
    net-<id>-out   packets forwarded into one of its veths
                     ip saddr <pool>: accept            (its own containers, from here or another host)
                     ct state established,related: accept ; ct status dnat: accept   (not internal)
                     drop
    net-<id>-post  nat postrouting for ip saddr <pool>
                     ip daddr <pool> ct status dnat: masquerade (hairpin to its own published port)
                     ip daddr @net_pools: return         (inside the cluster: no NAT)
                     masquerade                          (nat-outgoing, not internal)

Programming is idempotent (add + flush), so reconcile can replay it.
"""

from __future__ import annotations

from typing import Any

from netcore.osl.nft import cmd, jump, prefix, rule

from drivers.routed.plan import RoutedPlan

__all__ = ["chains", "program", "unprogram", "pool_known", "pool_forgotten", "attach", "detach"]


def chains(plan: RoutedPlan) -> tuple[str, str, str]:
    short = plan.network_id[:12]
    return f"net-{short}-in", f"net-{short}-out", f"net-{short}-post"


def _meta(key: str, op: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


def _ip(field: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": field}}, "right": right}}


_CT_DNAT = {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}
_CT_REPLY = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}
ACCEPT, DROP, RETURN, MASQ = {"accept": None}, {"drop": None}, {"return": None}, {"masquerade": None}


def program(plan: RoutedPlan, family: str, table: str) -> list[dict[str, Any]]:
    cin, cout, cpost = chains(plan)
    pool = prefix(plan.subnet)
    out: list[dict[str, Any]] = []
    for chain in (cin, cout, cpost):
        out += [cmd("add", "chain", family=family, table=table, name=chain), cmd("flush", "chain", family=family, table=table, name=chain)]
    if not plan.internal:
        out.append(rule(family, table, cin, _CT_DNAT, ACCEPT))
    out.append(rule(family, table, cin, _ip("daddr", pool), ACCEPT))
    out.append(rule(family, table, cin, _ip("daddr", "@net_pools"), DROP))
    out.append(rule(family, table, cin, _meta("oifname", "==", "@net_ifs"), DROP))
    if plan.internal:
        out.append(rule(family, table, cin, DROP))
    out.append(rule(family, table, cout, _ip("saddr", pool), ACCEPT))
    if not plan.internal:
        out.append(rule(family, table, cout, _CT_REPLY, ACCEPT))
        out.append(rule(family, table, cout, _CT_DNAT, ACCEPT))
    out.append(rule(family, table, cout, DROP))
    if not plan.internal:
        out.append(rule(family, table, cpost, _ip("daddr", pool), _CT_DNAT, MASQ))
        out.append(rule(family, table, cpost, _ip("daddr", "@net_pools"), RETURN))
        if plan.nat_outgoing:
            out.append(rule(family, table, cpost, MASQ))
    out.append(cmd("add", "element", family=family, table=table, name="net_pools", elem=[pool]))
    out.append(cmd("add", "element", family=family, table=table, name="post_src", elem=[[pool, jump(cpost)]]))
    return out


def unprogram(plan: RoutedPlan, family: str, table: str, present: set[str]) -> list[dict[str, Any]]:
    """Commands removing what ``program`` added; ``present`` names the chains that still exist.

    Veths must be detached first (their map elements jump to these chains)."""
    cin, cout, cpost = chains(plan)
    pool = prefix(plan.subnet)
    out: list[dict[str, Any]] = []
    if cpost in present:
        out.append(cmd("delete", "element", family=family, table=table, name="post_src", elem=[pool]))
        out.append(cmd("delete", "element", family=family, table=table, name="net_pools", elem=[pool]))
    for chain in (cin, cout, cpost):
        if chain in present:
            out.append(cmd("delete", "chain", family=family, table=table, name=chain))
    return out


def pool_known(subnet: str, family: str, table: str) -> list[dict[str, Any]]:
    """A routed pool of the cluster (another host's network) for the isolation set."""
    return [cmd("add", "element", family=family, table=table, name="net_pools", elem=[prefix(subnet)])]


def pool_forgotten(subnet: str, family: str, table: str) -> list[dict[str, Any]]:
    return [cmd("delete", "element", family=family, table=table, name="net_pools", elem=[prefix(subnet)])]


def attach(plan: RoutedPlan, veth: str, family: str, table: str) -> list[dict[str, Any]]:
    """A container's host-side veth joins the network's chains (idempotent)."""
    cin, cout, _ = chains(plan)
    return [
        cmd("add", "element", family=family, table=table, name="net_ifs", elem=[veth]),
        cmd("add", "element", family=family, table=table, name="fwd_in", elem=[[veth, jump(cin)]]),
        cmd("add", "element", family=family, table=table, name="fwd_out", elem=[[veth, jump(cout)]]),
    ]


def detach(veth: str, family: str, table: str) -> list[dict[str, Any]]:
    """Each command alone (apply them one by one: some may already be gone)."""
    return [cmd("delete", "element", family=family, table=table, name=name, elem=[veth]) for name in ("net_ifs", "fwd_in", "fwd_out")]
