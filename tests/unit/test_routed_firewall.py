"""The routed network's nftables rules as data (drivers/routed/firewall.py), against goldens.

Goldens live in tests/unit/golden/routed-internal=<b>,nat=<b>.json;
``NETCORE_UPDATE_GOLDEN=1`` rewrites them (review the diff).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from .golden import check_golden

from drivers.routed.firewall import attach, chains, detach, program, unprogram
from drivers.routed.plan import plan_network
from netcore import Network

GOLDEN = Path(__file__).parent / "golden"
FAMILY, TABLE = "inet", "netcore"
NET_ID = "0123456789abcdef" * 4
POOL = "10.42.0.0/16"
POOL_PREFIX = {"prefix": {"addr": "10.42.0.0", "len": 16}}
CIN, COUT, CPOST = "net-0123456789ab-in", "net-0123456789ab-out", "net-0123456789ab-post"
COMBOS = list(itertools.product([True, False], repeat=2))  # internal, nat-outgoing
DROP, ACCEPT, MASQ, RETURN = {"drop": None}, {"accept": None}, {"masquerade": None}, {"return": None}


def b(v: bool) -> str:
    return "true" if v else "false"


def make_plan(internal: bool, nat: bool):
    return plan_network(Network(id=NET_ID, name="r", driver="routed", subnet=POOL, options={"nat-outgoing": b(nat)}, internal=internal))


def golden_name(internal: bool, nat: bool) -> str:
    return f"routed-internal={b(internal)},nat={b(nat)}.json"


def rules(cmds: list[dict[str, Any]], chain: str) -> list[list[dict[str, Any]]]:
    return [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain]


def ip(field: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": field}}, "right": right}}


@pytest.mark.parametrize("internal,nat", COMBOS, ids=lambda v: b(v))
def test_program_matches_golden(internal, nat):
    got = program(make_plan(internal, nat), FAMILY, TABLE)
    check_golden(GOLDEN / golden_name(internal, nat), got)


def test_no_stale_goldens():
    assert {p.name for p in GOLDEN.glob("routed-*.json")} == {golden_name(*c) for c in COMBOS}


def test_own_pool_passes_other_pools_and_networks_are_dropped():
    cin = rules(program(make_plan(False, True), FAMILY, TABLE), CIN)
    own = cin.index([ip("daddr", POOL_PREFIX), ACCEPT])
    assert cin.index([ip("daddr", "@net_pools"), DROP]) > own  # other routed pools, here or on other hosts
    assert [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@net_ifs"}}, DROP] in cin  # bridges here


def test_inside_the_cluster_no_nat_outside_masquerade_unless_off():
    post = rules(program(make_plan(False, True), FAMILY, TABLE), CPOST)
    assert post.index([ip("daddr", "@net_pools"), RETURN]) < post.index([MASQ])
    assert [MASQ] not in rules(program(make_plan(False, False), FAMILY, TABLE), CPOST)


def test_internal_drops_everything_leaving_the_pool_and_never_nats():
    cmds = program(make_plan(True, True), FAMILY, TABLE)
    assert rules(cmds, CIN)[-1] == [DROP]
    assert rules(cmds, COUT) == [[ip("saddr", POOL_PREFIX), ACCEPT], [DROP]]
    assert rules(cmds, CPOST) == []


@pytest.mark.parametrize("internal,nat", COMBOS, ids=lambda v: b(v))
def test_every_command_targets_our_table_and_unprogram_undoes(internal, nat):
    plan = make_plan(internal, nat)
    cmds = program(plan, FAMILY, TABLE) + attach(plan, "ncve-x", FAMILY, TABLE) + detach("ncve-x", FAMILY, TABLE)
    for c in cmds:
        ((verb, body),) = c.items()
        ((kind, fields),) = body.items()
        assert fields.get("table") == TABLE and fields["family"] == FAMILY
    added = {c["add"]["chain"]["name"] for c in program(plan, FAMILY, TABLE) if "chain" in c.get("add", {})}
    undo = unprogram(plan, FAMILY, TABLE, added)
    assert {c["delete"]["chain"]["name"] for c in undo if "chain" in c.get("delete", {})} == set(chains(plan))
    assert unprogram(plan, FAMILY, TABLE, set()) == []


def test_a_veth_jumps_to_its_networks_chains():
    cmds = attach(make_plan(False, True), "ncve-0a", FAMILY, TABLE)
    elems = {c["add"]["element"]["name"]: c["add"]["element"]["elem"] for c in cmds}
    assert elems == {"net_ifs": ["ncve-0a"], "fwd_in": [["ncve-0a", {"jump": {"target": CIN}}]], "fwd_out": [["ncve-0a", {"jump": {"target": COUT}}]]}
    assert [c["delete"]["element"]["name"] for c in detach("ncve-0a", FAMILY, TABLE)] == ["net_ifs", "fwd_in", "fwd_out"]
