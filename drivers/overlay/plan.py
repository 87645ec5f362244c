"""The overlay network's options and plan: pure functions, every error before the kernel."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netcore import InvalidConfig, Network
from netcore import options as options_

__all__ = ["VNI", "MTU", "OverlayPlan", "plan_network", "parse_vni", "ENCAP"]

VNI = "com.docker.network.driver.overlay.vxlanid_list"
MTU = "com.docker.network.driver.mtu"
SHORT = {"vni": VNI, "mtu": MTU}
OPTIONS = {VNI: "the network's VXLAN id (default: the cluster picks a free one from 4096)", MTU: "MTU of the containers' interfaces (default: the underlay's minus 50)"}
ENCAP = 50  # inner Ethernet 14 + IP 20 + UDP 8 + VXLAN 8
VNI_MIN, VNI_MAX = 1, (1 << 24) - 1


@dataclass(frozen=True)
class OverlayPlan:
    network_id: str
    netns: str  # the overlay namespace's name (in /run/netns)
    vxlan: str  # the VXLAN device's name where it is made (the engine's netns), before it moves
    subnet: str
    gateway_cidr: str | None  # on br0 in the overlay namespace
    vni: int | None  # None until the cluster allocated it
    mtu: int | None  # None: underlay MTU minus ENCAP


def canonical_options(options: dict[str, str]) -> dict[str, str]:
    return options_.canonical(options, SHORT, OPTIONS, "overlay")


def parse_vni(value: str) -> int:
    first = value.split(",")[0].strip()
    if not first.isdigit() or not VNI_MIN <= int(first) <= VNI_MAX:
        raise InvalidConfig(f"invalid VXLAN id {value!r}: expected an integer between {VNI_MIN} and {VNI_MAX}")
    return int(first)


def plan_network(network: Network, tag: str) -> OverlayPlan:
    opts = canonical_options(network.options)
    mtu = options_.mtu(opts[MTU]) if MTU in opts else None
    if not network.subnet:
        raise InvalidConfig("an overlay network needs a subnet")
    gateway_cidr = f"{network.gateway}/{ipaddress.ip_network(network.subnet).prefixlen}" if network.gateway else None
    short = network.id[:10]
    return OverlayPlan(
        network_id=network.id,
        netns=f"nc-{tag}-ov-{short}",
        vxlan=f"ncvx-{short}",
        subnet=network.subnet,
        gateway_cidr=gateway_cidr,
        vni=parse_vni(opts[VNI]) if VNI in opts else None,
        mtu=mtu,
    )
