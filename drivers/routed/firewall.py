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

from netcore.osl.nftrules import ACCEPT, DROP, MASQUERADE, RETURN, chain_heads, cmd, ct_dnat, ct_reply
from netcore.osl.nftrules import interface_elements, ip_match, jump, meta_match, network_chains, prefix, remove_interface, rule

from drivers.routed.plan import RoutedPlan

__all__ = ["chains", "program", "unprogram", "pool_known", "pool_forgotten", "attach", "detach"]


def chains(plan: RoutedPlan) -> tuple[str, str, str]:
    return network_chains(plan.network_id)


def program(plan: RoutedPlan, family: str, table: str) -> list[dict[str, Any]]:
    cin, cout, cpost = chains(plan)
    pool = prefix(plan.subnet)
    out = chain_heads(family, table, (cin, cout, cpost))
    if not plan.internal:
        out.append(rule(family, table, cin, ct_dnat(), ACCEPT))
    out.append(rule(family, table, cin, ip_match("daddr", pool), ACCEPT))
    out.append(rule(family, table, cin, ip_match("daddr", "@net_pools"), DROP))
    out.append(rule(family, table, cin, meta_match("oifname", "==", "@net_ifs"), DROP))
    if plan.internal:
        out.append(rule(family, table, cin, DROP))
    out.append(rule(family, table, cout, ip_match("saddr", pool), ACCEPT))
    if not plan.internal:
        out.append(rule(family, table, cout, ct_reply(), ACCEPT))
        out.append(rule(family, table, cout, ct_dnat(), ACCEPT))
    out.append(rule(family, table, cout, DROP))
    if not plan.internal:
        out.append(rule(family, table, cpost, ip_match("daddr", pool), ct_dnat(), MASQUERADE))
        out.append(rule(family, table, cpost, ip_match("daddr", "@net_pools"), RETURN))
        if plan.nat_outgoing:
            out.append(rule(family, table, cpost, MASQUERADE))
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
    return interface_elements(veth, cin, cout, family, table)


def detach(veth: str, family: str, table: str) -> list[dict[str, Any]]:
    """Each command alone (apply them one by one: some may already be gone)."""
    return remove_interface(veth, family, table)
