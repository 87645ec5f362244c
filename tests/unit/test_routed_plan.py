"""The routed driver's options (drivers/routed/plan.py): pure, every error before the kernel."""

from __future__ import annotations

import pytest

from drivers.routed.plan import BGP, STORE, plan_network
from netcore import InvalidConfig, Network

NET_ID = "ab" * 32


def net(options=None, subnet="10.42.0.0/16", internal=False):
    return Network(id=NET_ID, name="r", driver="routed", subnet=subnet, gateway="169.254.1.1", options=options or {}, internal=internal)


def test_defaults_are_calicos():
    p = plan_network(net())
    assert (p.block_size, p.routing, p.nat_outgoing, p.internal, p.mtu) == (26, STORE, True, False, None)
    assert p.subnet == "10.42.0.0/16"


def test_a_subnet_smaller_than_a_block_is_one_block():
    assert plan_network(net(subnet="10.42.0.0/28")).block_size == 28


@pytest.mark.parametrize(
    "options,expect",
    [
        ({"block-size": "24"}, {"block_size": 24}),
        ({"block_size": "32"}, {"block_size": 32}),
        ({"routing": "bgp"}, {"routing": BGP}),
        ({"routing": "STORE"}, {"routing": STORE}),
        ({"nat-outgoing": "false"}, {"nat_outgoing": False}),
        ({"mtu": "1400"}, {"mtu": 1400}),
        ({"com.docker.network.driver.mtu": "9000"}, {"mtu": 9000}),
    ],
)
def test_options(options, expect):
    p = plan_network(net(options))
    for k, v in expect.items():
        assert getattr(p, k) == v


@pytest.mark.parametrize(
    "options,message",
    [
        ({"block-size": "15"}, "between 16 (the subnet's) and 32"),
        ({"block-size": "33"}, "between 16 (the subnet's) and 32"),
        ({"block-size": "x"}, "expected an integer"),
        ({"routing": "ospf"}, "expected store or bgp"),
        ({"nat-outgoing": "maybe"}, "expected true or false"),
        ({"mtu": "20"}, "between 68 and 65535"),
        ({"color": "red"}, "unknown routed driver option 'color'"),
    ],
)
def test_bad_options_are_one_clear_error(options, message):
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_network(net(options))


def test_a_subnet_is_required():
    with pytest.raises(InvalidConfig, match="needs a subnet"):
        plan_network(net(subnet=None))
