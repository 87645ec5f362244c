"""The bridge network's nftables rules as data (drivers/bridge/firewall.py), against goldens.

Goldens live in tests/unit/golden/bridge-icc=<b>,internal=<b>,masq=<b>.json.
Regenerate them after an intended change with::

    NETCORE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_bridge_firewall.py

then read the diff before committing it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from .golden import check_golden

from drivers.bridge.firewall import chains, program, unprogram
from drivers.bridge.plan import plan_network
from netcore import Network

GOLDEN = Path(__file__).parent / "golden"
FAMILY, TABLE = "inet", "netcore"
NET_ID = "0123456789abcdef" * 4
BRIDGE = "ncbr-0123456789"
SUBNET = "10.42.0.0/24"
CIN, COUT, CPOST = "net-0123456789ab-in", "net-0123456789ab-out", "net-0123456789ab-post"

COMBOS = list(itertools.product([True, False], repeat=3))  # icc, internal, masq


def b(v: bool) -> str:
    return "true" if v else "false"


def make_plan(icc: bool, internal: bool, masq: bool, subnet: str | None = SUBNET):
    net = Network(
        id=NET_ID,
        name="web",
        driver="bridge",
        subnet=subnet,
        gateway="10.42.0.1" if subnet else None,
        options={"icc": b(icc), "masquerade": b(masq)},
        internal=internal,
    )
    return plan_network(net, "abc123")


def golden_name(icc: bool, internal: bool, masq: bool) -> str:
    return f"bridge-icc={b(icc)},internal={b(internal)},masq={b(masq)}.json"


def rules(cmds: list[dict[str, Any]], chain: str) -> list[list[dict[str, Any]]]:
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def elements(cmds: list[dict[str, Any]], verb: str, set_name: str) -> list[Any]:
    return [c[verb]["element"]["elem"] for c in cmds if "element" in c.get(verb, {}) and c[verb]["element"]["name"] == set_name]


def oif(op: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": right}}


DROP, ACCEPT, MASQ = {"drop": None}, {"accept": None}, {"masquerade": None}
CT_DNAT = {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}
CT_REPLY = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}


# ------------------------------------------------------------------ goldens ----


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_program_matches_golden(icc, internal, masq):
    got = program(make_plan(icc, internal, masq), FAMILY, TABLE)
    check_golden(GOLDEN / golden_name(icc, internal, masq), got)


def test_no_stale_goldens():
    expected = {golden_name(*c) for c in COMBOS}
    present = {p.name for p in GOLDEN.glob("bridge-icc=*.json")}
    assert present == expected


# ------------------------------------------------------------------ semantics ----


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_every_command_targets_our_table(icc, internal, masq):
    for c in program(make_plan(icc, internal, masq), FAMILY, TABLE):
        ((verb, body),) = c.items()
        ((kind, fields),) = body.items()
        assert verb in ("add", "flush")
        assert fields["family"] == FAMILY and fields["table"] == TABLE, c
        assert kind in ("chain", "rule", "element")


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_chains_added_and_flushed_before_any_rule(icc, internal, masq):
    """Idempotent: replaying the program re-creates the chains' content, it never doubles it."""
    cmds = program(make_plan(icc, internal, masq), FAMILY, TABLE)
    first_rule = next(i for i, c in enumerate(cmds) if "rule" in c.get("add", {}))
    for chain in (CIN, COUT, CPOST):
        add = cmds.index({"add": {"chain": {"family": FAMILY, "table": TABLE, "name": chain}}})
        flush = cmds.index({"flush": {"chain": {"family": FAMILY, "table": TABLE, "name": chain}}})
        assert add < flush < first_rule
    # map elements jump into the chains, so they come after them
    first_elem = next(i for i, c in enumerate(cmds) if "element" in c.get("add", {}))
    assert first_elem > first_rule


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_icc_rule(icc, internal, masq):
    cin = rules(program(make_plan(icc, internal, masq), FAMILY, TABLE), CIN)
    assert [oif("==", BRIDGE), ACCEPT if icc else DROP] in cin
    # published ports (DNAT) pass before icc and isolation, except on internal networks
    assert (cin[0] == [CT_DNAT, ACCEPT]) is (not internal)


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_isolation_from_other_networks_always(icc, internal, masq):
    cin = rules(program(make_plan(icc, internal, masq), FAMILY, TABLE), CIN)
    assert [oif("==", "@net_ifs"), DROP] in cin
    # the own bridge is in net_ifs too: its verdict must come before the isolation drop
    assert cin.index([oif("==", "@net_ifs"), DROP]) > 0


@pytest.mark.parametrize("icc,masq", list(itertools.product([True, False], repeat=2)), ids=lambda v: b(v))
def test_internal_drops_both_ways_and_never_masquerades(icc, masq):
    cmds = program(make_plan(icc, internal=True, masq=masq), FAMILY, TABLE)
    cin, cout, cpost = rules(cmds, CIN), rules(cmds, COUT), rules(cmds, CPOST)
    assert cin[-1] == [DROP]  # catch-all after the icc and isolation verdicts
    assert cout == [[DROP]]  # nothing gets in, replies included
    assert cpost == []
    assert not any(MASQ in r for r in cin + cout + cpost)


@pytest.mark.parametrize("icc,masq", list(itertools.product([True, False], repeat=2)), ids=lambda v: b(v))
def test_not_internal_lets_out_anything_and_in_only_replies_and_published_ports(icc, masq):
    cmds = program(make_plan(icc, internal=False, masq=masq), FAMILY, TABLE)
    assert [DROP] not in rules(cmds, CIN)
    assert len(rules(cmds, CIN)) == 3
    assert rules(cmds, COUT) == [[CT_REPLY, ACCEPT], [CT_DNAT, ACCEPT], [DROP]]


@pytest.mark.parametrize("icc", [True, False], ids=b)
def test_masquerade_only_when_on_and_not_internal(icc):
    hairpin = [oif("==", BRIDGE), CT_DNAT, MASQ]  # a published port reached from its own network
    on = rules(program(make_plan(icc, internal=False, masq=True), FAMILY, TABLE), CPOST)
    assert on == [hairpin, [oif("!=", BRIDGE), MASQ]]  # not for traffic staying on the bridge
    off = rules(program(make_plan(icc, internal=False, masq=False), FAMILY, TABLE), CPOST)
    assert off == [hairpin]


@pytest.mark.parametrize("icc,internal,masq", COMBOS, ids=lambda v: b(v))
def test_map_elements_dispatch_into_the_networks_chains(icc, internal, masq):
    cmds = program(make_plan(icc, internal, masq), FAMILY, TABLE)
    assert elements(cmds, "add", "net_ifs") == [[BRIDGE]]
    assert elements(cmds, "add", "fwd_in") == [[[BRIDGE, {"jump": {"target": CIN}}]]]
    assert elements(cmds, "add", "fwd_out") == [[[BRIDGE, {"jump": {"target": COUT}}]]]
    assert elements(cmds, "add", "post_src") == [[[{"prefix": {"addr": "10.42.0.0", "len": 24}}, {"jump": {"target": CPOST}}]]]


def test_no_subnet_means_no_nat_dispatch_and_no_masquerade():
    cmds = program(make_plan(True, False, True, subnet=None), FAMILY, TABLE)
    assert elements(cmds, "add", "post_src") == []
    assert rules(cmds, CPOST) == []


def test_chain_names_are_per_network():
    plan = make_plan(True, False, True)
    assert chains(plan) == (CIN, COUT, CPOST)
    other = plan_network(Network(id="f" * 64, name="x", driver="bridge"), "abc123")
    assert set(chains(other)).isdisjoint(chains(plan))


def test_table_and_family_are_parameters():
    cmds = program(make_plan(True, False, True), "inet", "netcore-abc123")
    assert all(next(iter(next(iter(c.values())).values()))["table"] == "netcore-abc123" for c in cmds)


# ------------------------------------------------------------------ unprogram ----


def _kinds(cmds):
    return [(verb, kind) for c in cmds for verb, body in c.items() for kind in body]


def test_unprogram_deletes_map_elements_before_chains():
    plan = make_plan(True, False, True)
    cmds = unprogram(plan, FAMILY, TABLE, present={CIN, COUT, CPOST})
    kinds = _kinds(cmds)
    assert set(kinds) == {("delete", "element"), ("delete", "chain")}
    last_elem = max(i for i, k in enumerate(kinds) if k == ("delete", "element"))
    first_chain = min(i for i, k in enumerate(kinds) if k == ("delete", "chain"))
    assert last_elem < first_chain  # a chain still referenced by a map cannot be deleted
    assert elements(cmds, "delete", "net_ifs") == [[BRIDGE]]
    assert elements(cmds, "delete", "fwd_in") == [[BRIDGE]]
    assert elements(cmds, "delete", "fwd_out") == [[BRIDGE]]
    assert elements(cmds, "delete", "post_src") == [[{"prefix": {"addr": "10.42.0.0", "len": 24}}]]
    deleted = [c["delete"]["chain"]["name"] for c in cmds if "chain" in c["delete"]]
    assert sorted(deleted) == sorted([CIN, COUT, CPOST])


def test_unprogram_undoes_exactly_what_program_added():
    plan = make_plan(False, False, True)
    added = program(plan, FAMILY, TABLE)
    removed = unprogram(plan, FAMILY, TABLE, present={CIN, COUT, CPOST})
    for set_name in ("net_ifs", "fwd_in", "fwd_out", "post_src"):
        assert len(elements(added, "add", set_name)) == len(elements(removed, "delete", set_name)) == 1
    added_chains = {c["add"]["chain"]["name"] for c in added if "chain" in c.get("add", {})}
    removed_chains = {c["delete"]["chain"]["name"] for c in removed if "chain" in c["delete"]}
    assert added_chains == removed_chains


def test_unprogram_when_already_gone_is_empty():
    assert unprogram(make_plan(True, False, True), FAMILY, TABLE, present=set()) == []
    assert unprogram(make_plan(True, False, True), FAMILY, TABLE, present={"net-ffffffffffff-in"}) == []


def test_unprogram_without_subnet_leaves_post_src_alone():
    cmds = unprogram(make_plan(True, False, True, subnet=None), FAMILY, TABLE, present={CIN, COUT, CPOST})
    assert elements(cmds, "delete", "post_src") == []
    assert len(elements(cmds, "delete", "fwd_in")) == 1
