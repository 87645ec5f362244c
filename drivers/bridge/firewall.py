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

from netcore.osl.nftrules import ACCEPT, DROP, MASQUERADE, chain_heads, cmd, ct_dnat, ct_reply
from netcore.osl.nftrules import interface_elements, jump, meta_match, network_chains, prefix, remove_interface, rule

from drivers.bridge.plan import BridgePlan

__all__ = ["chains", "program", "unprogram"]


def chains(plan: BridgePlan) -> tuple[str, str, str]:
    return network_chains(plan.network_id)


def program(plan: BridgePlan, family: str, table: str) -> list[dict[str, Any]]:
    cin, cout, cpost = chains(plan)
    br = plan.bridge
    out = chain_heads(family, table, (cin, cout, cpost))
    if not plan.internal:
        out.append(rule(family, table, cin, ct_dnat(), ACCEPT))
    out.append(rule(family, table, cin, meta_match("oifname", "==", br), DROP if not plan.icc else ACCEPT))
    out.append(rule(family, table, cin, meta_match("oifname", "==", "@net_ifs"), DROP))
    if plan.internal:
        out.append(rule(family, table, cin, DROP))
    else:
        out.append(rule(family, table, cout, ct_reply(), ACCEPT))
        out.append(rule(family, table, cout, ct_dnat(), ACCEPT))
    out.append(rule(family, table, cout, DROP))
    if not plan.internal and plan.subnet:
        out.append(rule(family, table, cpost, meta_match("oifname", "==", br), ct_dnat(), MASQUERADE))
    if plan.masquerade and not plan.internal and plan.subnet:
        out.append(rule(family, table, cpost, meta_match("oifname", "!=", br), MASQUERADE))
    out += interface_elements(br, cin, cout, family, table)
    if plan.subnet:
        out.append(cmd("add", "element", family=family, table=table, name="post_src", elem=[[prefix(plan.subnet), jump(cpost)]]))
    return out


def unprogram(plan: BridgePlan, family: str, table: str, present: set[str]) -> list[dict[str, Any]]:
    """Commands removing what ``program`` added; ``present`` names the chains that still exist."""
    cin, cout, cpost = chains(plan)
    br = plan.bridge
    out: list[dict[str, Any]] = []
    if cin in present:
        out += remove_interface(br, family, table)
        if plan.subnet and cpost in present:
            out.append(cmd("delete", "element", family=family, table=table, name="post_src", elem=[prefix(plan.subnet)]))
    for chain in (cin, cout, cpost):
        if chain in present:
            out.append(cmd("delete", "chain", family=family, table=table, name=chain))
    return out
