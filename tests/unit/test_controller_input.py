"""Controller input validation that needs no kernel: --subnet / --gateway / --ip-range."""

from __future__ import annotations

import pytest

from netcore.controller import _check_ipam_input
from netcore.errors import InvalidConfig


@pytest.mark.parametrize(
    "subnet,gateway,ip_range",
    [
        (None, None, None),
        ("10.1.0.0/24", None, None),
        ("10.1.0.0/24", "10.1.0.1", None),
        ("10.1.0.0/24", "10.1.0.254", None),
        ("10.1.0.0/24", None, "10.1.0.128/25"),
        ("10.1.0.0/24", "10.1.0.1", "10.1.0.0/24"),  # range == subnet
        ("10.1.0.0/24", "10.1.0.200", "10.1.0.0/25"),  # gateway outside the range but inside the subnet
    ],
)
def test_valid_input_passes(subnet, gateway, ip_range):
    assert _check_ipam_input(subnet, gateway, ip_range) is None


@pytest.mark.parametrize(
    "subnet,gateway,ip_range,needle",
    [
        (None, "10.1.0.1", None, "need --subnet"),
        (None, None, "10.1.0.0/25", "need --subnet"),
        ("10.1.0.0/24", "10.2.0.1", None, "gateway 10.2.0.1"),
        ("10.1.0.0/24", "10.1.0.0", None, "not a usable address"),
        ("10.1.0.0/24", "10.1.0.255", None, "not a usable address"),
        ("10.1.0.0/24", "gw", None, "invalid gateway"),
        ("10.1.0.0/24", "fd00::1", None, "invalid gateway"),
        ("10.1.0.0/24", None, "10.2.0.0/25", "not inside subnet"),
        ("10.1.0.0/24", None, "10.1.0.0/23", "not inside subnet"),
        ("10.1.0.0/24", None, "10.1.0.1/25", "invalid ip-range"),
        ("10.1.0.0/24", None, "junk", "invalid ip-range"),
        ("10.1.0.5/24", None, None, "invalid subnet"),  # host bits set
        ("10.1.0.0/33", None, None, "invalid subnet"),
        ("nonsense", None, None, "invalid subnet"),
        ("fd00::/64", None, None, "IPv4"),
        ("10.1.0.0/31", None, None, "no room"),
    ],
)
def test_invalid_input_refused_with_reason(subnet, gateway, ip_range, needle):
    with pytest.raises(InvalidConfig) as info:
        _check_ipam_input(subnet, gateway, ip_range)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)  # one line for the user


@pytest.mark.parametrize(
    "subnet,block",
    [
        ("127.0.0.0/24", "127.0.0.0/8"),
        ("224.0.0.0/24", "224.0.0.0/4"),
        ("0.0.0.0/8", "0.0.0.0/8"),
        ("240.0.0.0/24", "240.0.0.0/4"),
        ("255.255.255.0/30", "240.0.0.0/4"),
        ("169.254.0.0/24", "169.254.0.0/16"),
        ("126.0.0.0/7", "127.0.0.0/8"),  # a wider subnet covering a reserved block
    ],
)
def test_reserved_subnets_are_refused_in_one_line(subnet, block):
    with pytest.raises(InvalidConfig) as info:
        _check_ipam_input(subnet, None, None)
    msg = str(info.value)
    assert msg.startswith(f"invalid subnet {subnet}") and block in msg and "reserved" in msg
    assert "\n" not in msg


def test_link_local_only_for_a_driver_that_owns_it():
    assert _check_ipam_input("169.254.0.0/24", None, None, link_local=True) is None
    with pytest.raises(InvalidConfig, match="reserved"):  # the exemption is for link-local alone
        _check_ipam_input("127.0.0.0/24", None, None, link_local=True)
    with pytest.raises(InvalidConfig, match="reserved"):  # and only inside 169.254.0.0/16
        _check_ipam_input("169.252.0.0/14", None, None, link_local=True)


@pytest.mark.parametrize("subnet", ["10.1.0.0/24", "172.17.0.0/16", "192.168.0.0/20", "100.64.0.0/10", "223.255.255.0/24", "1.0.0.0/8"])
def test_ordinary_subnets_next_to_reserved_blocks_pass(subnet):
    assert _check_ipam_input(subnet, None, None) is None
