"""The overlay driver's options and plan (drivers/overlay/plan.py): pure, every error before the kernel."""

from __future__ import annotations

import pytest

from drivers.overlay.plan import MTU, VNI, plan_network
from netcore import InvalidConfig, Network

NET_ID = "0123456789abcdef" * 4


def net(**options: str) -> Network:
    return Network(id=NET_ID, name="ov", driver="overlay", scope="global", subnet="10.0.3.0/24", gateway="10.0.3.1", options=options)


def test_defaults_and_names():
    plan = plan_network(net(), "abc123")
    assert plan.netns == "nc-abc123-ov-0123456789"
    assert plan.vxlan == "ncvx-0123456789" and len(plan.vxlan) <= 15
    assert plan.gateway_cidr == "10.0.3.1/24"
    assert plan.vni is None and plan.mtu is None


@pytest.mark.parametrize("opts,vni,mtu", [({"vni": "4097"}, 4097, None), ({VNI: "5000,5001"}, 5000, None), ({"mtu": "1400"}, None, 1400), ({MTU: "9000"}, None, 9000)])
def test_short_and_docker_keys(opts, vni, mtu):
    plan = plan_network(net(**opts), "t")
    assert (plan.vni, plan.mtu) == (vni, mtu)


@pytest.mark.parametrize(
    "opts,message",
    [
        ({"vni": "0"}, "invalid VXLAN id '0'"),
        ({"vni": "16777216"}, "invalid VXLAN id '16777216'"),
        ({"vni": "x"}, "invalid VXLAN id 'x'"),
        ({"mtu": "60"}, "must be between 68 and 65535"),
        ({"mtu": "big"}, "expected an integer"),
        ({"icc": "false"}, "unknown overlay driver option 'icc'"),
    ],
)
def test_bad_options_are_refused(opts, message):
    with pytest.raises(InvalidConfig, match=message):
        plan_network(net(**opts), "t")
