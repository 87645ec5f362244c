"""The bridge network's nftables rules, as data.

Per network three chains, reached through the table's verdict maps:

    net-<id>-in    packets forwarded from the bridge
                     ct status dnat: accept         (published ports are for everyone)
                     oifname <bridge>: drop if icc is off, else accept
                     oifname @net_ifs: drop         (isolation from other networks)
                     internal: drop                 (no way out at all)
    net-<id>-out   packets forwarded into the bridge from elsewhere
                     internal: drop                 (established replies included: nothing gets in)
                     else: replies and published ports accepted, the rest dropped
                     (like Docker 28: a container is reached from outside only
                     through ports it publishes)
    net-<id>-post  nat postrouting for the subnet
                     oifname <bridge> ct status dnat masquerade
                                                    (hairpin: a container reaching a
                                                    published port of its own network)
                     oifname != <bridge> masquerade (unless masquerade is off or internal)

Programming is idempotent (add + flush), so reconcile can replay it.
"""

from __future__ import annotations

from typing import Any

from netcore.osl.nft import cmd, jump, prefix, rule

from drivers.bridge.plan import BridgePlan

__all__ = ["chains", "program", "unprogram"]


def chains(plan: BridgePlan) -> tuple[str, str, str]:
    short = plan.network_id[:12]
    return f"net-{short}-in", f"net-{short}-out", f"net-{short}-post"


def _match(key: str, op: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


_CT_DNAT = {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}
_CT_REPLY = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}


def program(plan: BridgePlan, family: str, table: str) -> list[dict[str, Any]]:
    cin, cout, cpost = chains(plan)
    br = plan.bridge
    out: list[dict[str, Any]] = []
    for chain in (cin, cout, cpost):
        out += [cmd("add", "chain", family=family, table=table, name=chain), cmd("flush", "chain", family=family, table=table, name=chain)]
    if not plan.internal:
        out.append(rule(family, table, cin, _CT_DNAT, {"accept": None}))
    out.append(rule(family, table, cin, _match("oifname", "==", br), {"drop": None} if not plan.icc else {"accept": None}))
    out.append(rule(family, table, cin, _match("oifname", "==", "@net_ifs"), {"drop": None}))
    if plan.internal:
        out.append(rule(family, table, cin, {"drop": None}))
    else:
        out.append(rule(family, table, cout, _CT_REPLY, {"accept": None}))
        out.append(rule(family, table, cout, _CT_DNAT, {"accept": None}))
    out.append(rule(family, table, cout, {"drop": None}))
    if not plan.internal and plan.subnet:
        out.append(rule(family, table, cpost, _match("oifname", "==", br), _CT_DNAT, {"masquerade": None}))
    if plan.masquerade and not plan.internal and plan.subnet:
        out.append(rule(family, table, cpost, _match("oifname", "!=", br), {"masquerade": None}))
    out.append(cmd("add", "element", family=family, table=table, name="net_ifs", elem=[br]))
    out.append(cmd("add", "element", family=family, table=table, name="fwd_in", elem=[[br, jump(cin)]]))
    out.append(cmd("add", "element", family=family, table=table, name="fwd_out", elem=[[br, jump(cout)]]))
    if plan.subnet:
        out.append(cmd("add", "element", family=family, table=table, name="post_src", elem=[[prefix(plan.subnet), jump(cpost)]]))
    return out


def unprogram(plan: BridgePlan, family: str, table: str, present: set[str]) -> list[dict[str, Any]]:
    """Commands removing what ``program`` added; ``present`` names the chains that still exist."""
    cin, cout, cpost = chains(plan)
    br = plan.bridge
    out: list[dict[str, Any]] = []
    if cin in present:
        out.append(cmd("delete", "element", family=family, table=table, name="net_ifs", elem=[br]))
        out.append(cmd("delete", "element", family=family, table=table, name="fwd_in", elem=[br]))
        out.append(cmd("delete", "element", family=family, table=table, name="fwd_out", elem=[br]))
        if plan.subnet and cpost in present:
            out.append(cmd("delete", "element", family=family, table=table, name="post_src", elem=[prefix(plan.subnet)]))
    for chain in (cin, cout, cpost):
        if chain in present:
            out.append(cmd("delete", "chain", family=family, table=table, name=chain))
    return out
