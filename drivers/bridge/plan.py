"""The bridge driver's options and plan: pure functions, every error before the kernel."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netcore import InvalidConfig, Network, names
from netcore import options as options_

__all__ = ["OPTIONS", "BridgePlan", "plan_network"]

# Docker's option keys, and the short forms netcore also accepts.
NAME = "com.docker.network.bridge.name"
MASQ = "com.docker.network.bridge.enable_ip_masquerade"
ICC = "com.docker.network.bridge.enable_icc"
MTU = "com.docker.network.driver.mtu"
SHORT = {"bridge_name": NAME, "masquerade": MASQ, "icc": ICC, "mtu": MTU}
OPTIONS = {
    NAME: "name of the Linux bridge (at most 15 characters of [a-zA-Z0-9_.-]); default ncbr-<network id>",
    MASQ: "masquerade traffic leaving the host (true/false, default true)",
    ICC: "let containers of this network talk to each other (true/false, default true)",
    MTU: "MTU of the containers' interfaces (68-65535, default 1500)",
}


@dataclass(frozen=True)
class BridgePlan:
    network_id: str
    bridge: str
    alias: str
    mac: str  # the bridge's own (gateway) MAC, fixed for the network's life
    subnet: str | None
    gateway_cidr: str | None  # gateway address with the subnet's prefix, on the bridge
    mtu: int | None
    icc: bool
    masquerade: bool
    internal: bool


def canonical_options(options: dict[str, str]) -> dict[str, str]:
    """Options under Docker's keys; unknown keys are an error."""
    return options_.canonical(options, SHORT, OPTIONS, "bridge")


def plan_network(network: Network, tag: str) -> BridgePlan:
    opts = canonical_options(network.options)
    bridge = opts.get(NAME) or names.bridge_name(network.id)
    if not names.valid_ifname(bridge):
        raise InvalidConfig(
            f"invalid bridge name {bridge!r}: at most {names.IFNAMSIZ} characters of [a-zA-Z0-9_.-], starting with a letter or digit"
        )
    mtu = options_.mtu(opts[MTU]) if MTU in opts else None
    gateway_cidr = None
    if network.subnet and network.gateway:
        gateway_cidr = f"{network.gateway}/{ipaddress.ip_network(network.subnet).prefixlen}"
    return BridgePlan(
        network_id=network.id,
        bridge=bridge,
        alias=names.link_alias(tag, network.id),
        mac=names.mac_from_id(network.id),
        subnet=network.subnet,
        gateway_cidr=gateway_cidr,
        mtu=mtu,
        icc=options_.boolean(ICC, opts[ICC]) if ICC in opts else True,
        masquerade=options_.boolean(MASQ, opts[MASQ]) if MASQ in opts else True,
        internal=network.internal,
    )
