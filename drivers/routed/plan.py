"""The routed network's options and plan: pure functions, every error before the kernel."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netcore import InvalidConfig, Network
from netcore import options as options_

__all__ = ["OPTIONS", "GATEWAY", "HOST_MAC", "RTPROT", "RoutedPlan", "plan_network", "canonical_options", "STORE", "BGP"]

GATEWAY = "169.254.1.1"  # Calico's: no one owns it, the host side of each veth answers ARP for it
HOST_MAC = "ee:ee:ee:ee:ee:ee"  # Calico's host-side veth MAC: the same on every host and veth
RTPROT = 78  # protocol number on the routes the driver makes (/32s, blackholes, remote blocks)
STORE, BGP = "store", "bgp"
BLOCK_SIZE, ROUTING, NAT, MTU = "block-size", "routing", "nat-outgoing", "mtu"
OPTIONS = {
    BLOCK_SIZE: "prefix length of the per-host address blocks (default 26, at least the subnet's)",
    ROUTING: "how hosts learn each other's blocks: store (engines watch the store, default) or bgp (BIRD, iBGP full mesh)",
    NAT: "masquerade traffic to addresses outside the cluster's routed pools (true/false, default true)",
    MTU: "MTU of the containers' interfaces (68-65535, default 1500)",
}
ALIASES = {"block_size": BLOCK_SIZE, "nat_outgoing": NAT, "com.docker.network.driver.mtu": MTU}


@dataclass(frozen=True)
class RoutedPlan:
    network_id: str
    subnet: str  # the pool
    block_size: int
    routing: str  # STORE or BGP
    nat_outgoing: bool
    internal: bool
    mtu: int | None


def canonical_options(options: dict[str, str]) -> dict[str, str]:
    return options_.canonical(options, ALIASES, OPTIONS, "routed")


def plan_network(network: Network) -> RoutedPlan:
    opts = canonical_options(network.options)
    if not network.subnet:
        raise InvalidConfig("a routed network needs a subnet")
    pool = ipaddress.IPv4Network(network.subnet)
    size = max(26, pool.prefixlen)
    if BLOCK_SIZE in opts:
        size = options_.integer(BLOCK_SIZE, opts[BLOCK_SIZE])
        if not pool.prefixlen <= size <= 32:
            raise InvalidConfig(f"invalid value {size} for option {BLOCK_SIZE}: must be between {pool.prefixlen} (the subnet's) and 32")
    routing = opts.get(ROUTING, STORE).strip().lower()
    if routing not in (STORE, BGP):
        raise InvalidConfig(f"invalid value {opts[ROUTING]!r} for option {ROUTING}: expected store or bgp")
    mtu = options_.mtu(opts[MTU]) if MTU in opts else None
    return RoutedPlan(
        network_id=network.id,
        subnet=str(pool),
        block_size=size,
        routing=routing,
        nat_outgoing=options_.boolean(NAT, opts[NAT]) if NAT in opts else True,
        internal=network.internal,
        mtu=mtu,
    )
