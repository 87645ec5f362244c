"""The bridge driver's option parsing and plan (drivers/bridge/plan.py): pure, no kernel."""

from __future__ import annotations

import pytest

from drivers.bridge.plan import ICC, MASQ, MTU, NAME, OPTIONS, BridgePlan, canonical_options, plan_network
from netcore import InvalidConfig, Network, names

NET_ID = "0123456789abcdef" * 4
TAG = "abc123"


def network(options=None, internal=False, subnet="10.42.0.0/24", gateway="10.42.0.1") -> Network:
    return Network(
        id=NET_ID, name="web", driver="bridge", subnet=subnet, gateway=gateway, options=dict(options or {}), internal=internal
    )


def test_defaults():
    plan = plan_network(network(), TAG)
    assert plan == BridgePlan(
        network_id=NET_ID,
        bridge="ncbr-0123456789",
        alias=f"netcore:{TAG}:{NET_ID}",
        mac=names.mac_from_id(NET_ID),
        subnet="10.42.0.0/24",
        gateway_cidr="10.42.0.1/24",
        mtu=None,
        icc=True,
        masquerade=True,
        internal=False,
    )
    assert names.parse_link_alias(plan.alias) == (TAG, NET_ID)


def test_plan_is_frozen():
    plan = plan_network(network(), TAG)
    with pytest.raises(Exception):
        plan.icc = False  # type: ignore[misc]


def test_internal_is_carried():
    assert plan_network(network(internal=True), TAG).internal is True


def test_no_subnet_means_no_gateway_cidr():
    plan = plan_network(network(subnet=None, gateway=None), TAG)
    assert plan.subnet is None and plan.gateway_cidr is None


def test_gateway_cidr_uses_subnet_prefix():
    plan = plan_network(network(subnet="172.20.0.0/16", gateway="172.20.0.1"), TAG)
    assert plan.gateway_cidr == "172.20.0.1/16"


@pytest.mark.parametrize(
    "short,long",
    [("bridge_name", NAME), ("masquerade", MASQ), ("icc", ICC), ("mtu", MTU)],
)
def test_short_keys_map_to_docker_keys(short, long):
    assert canonical_options({short: "x"}) == {long: "x"}
    assert canonical_options({long: "x"}) == {long: "x"}


@pytest.mark.parametrize("form", ["short", "long"])
def test_options_in_both_forms_give_the_same_plan(form):
    short = {"bridge_name": "ncbr-mine", "masquerade": "false", "icc": "false", "mtu": "1400"}
    opts = short if form == "short" else {NAME: "ncbr-mine", MASQ: "false", ICC: "false", MTU: "1400"}
    plan = plan_network(network(opts), TAG)
    assert (plan.bridge, plan.masquerade, plan.icc, plan.mtu) == ("ncbr-mine", False, False, 1400)


@pytest.mark.parametrize(
    "value,expected",
    [("true", True), ("TRUE", True), (" yes ", True), ("1", True), ("on", True),
     ("false", False), ("False", False), ("0", False), ("no", False), ("off", False)],
)
def test_boolean_spellings(value, expected):
    plan = plan_network(network({"icc": value, "masquerade": value}), TAG)
    assert plan.icc is expected and plan.masquerade is expected


@pytest.mark.parametrize("key", ["vlan", "com.docker.network.bridge.host_binding_ipv4", "ICC", "parent"])
def test_unknown_option_names_it(key):
    with pytest.raises(InvalidConfig) as info:
        plan_network(network({key: "1"}), TAG)
    assert repr(key) in str(info.value)


@pytest.mark.parametrize("key", ["icc", "masquerade", ICC, MASQ])
@pytest.mark.parametrize("value", ["maybe", "", "2", "tru"])
def test_ill_typed_boolean(key, value):
    with pytest.raises(InvalidConfig, match="expected true or false"):
        plan_network(network({key: value}), TAG)


@pytest.mark.parametrize("value", ["abc", "1500.0", "", "0x5dc", "1e3"])
def test_ill_typed_mtu(value):
    with pytest.raises(InvalidConfig, match="mtu"):
        plan_network(network({"mtu": value}), TAG)


@pytest.mark.parametrize("value,ok", [("67", False), ("68", True), ("1500", True), ("9000", True), ("65535", True), ("65536", False), ("-1", False), ("0", False)])
def test_mtu_range(value, ok):
    if ok:
        assert plan_network(network({MTU: value}), TAG).mtu == int(value)
    else:
        with pytest.raises(InvalidConfig, match="between 68 and 65535"):
            plan_network(network({MTU: value}), TAG)


@pytest.mark.parametrize("name", ["x" * 16, "ncbr-toolongname", "br/0", "br 0", 'a"b;}', "..", "br:0", "br\n"])
def test_bad_bridge_name_refused(name):
    with pytest.raises(InvalidConfig, match="bridge name"):
        plan_network(network({"bridge_name": name}), TAG)


def test_bridge_name_of_exactly_15_chars_allowed():
    assert plan_network(network({"bridge_name": "b" * 15}), TAG).bridge == "b" * 15


def test_every_documented_option_is_accepted():
    values = {NAME: "ncbr-x", MASQ: "true", ICC: "true", MTU: "1500"}
    assert set(values) == set(OPTIONS)
    plan_network(network(values), TAG)  # no error
