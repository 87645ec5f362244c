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
