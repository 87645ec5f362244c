"""The macvlan driver's options and plan: pure functions, every error before the kernel."""

from __future__ import annotations

from dataclasses import dataclass

from netcore import InvalidConfig, Network, names
from netcore import options as options_

__all__ = ["OPTIONS", "MODES", "MacvlanPlan", "plan_network", "dummy_name"]

PARENT = "parent"
MODE = "macvlan_mode"
MODES = ("bridge", "private", "vepa", "passthru")
OPTIONS = {
    PARENT: "host interface the containers' interfaces stack on; default: a parent link of the network's own (dm-<id>)",
    MODE: f"macvlan mode: {', '.join(MODES)} (default bridge)",
}


@dataclass(frozen=True)
class MacvlanPlan:
    network_id: str
    parent: str  # the lower link, in the engine's netns
    own_parent: bool  # True: the driver makes the parent (no -o parent), and removes it with the network
    mode: str
    alias: str  # netcore:<tag>:<network id>, on a parent the driver made
    internal: bool


def dummy_name(network_id: str) -> str:
    """Docker's name for the parent it makes when none is given: ``dm-`` and 12 hex digits."""
    return f"dm-{network_id[:12]}"


def plan_network(network: Network, tag: str) -> MacvlanPlan:
    opts = options_.canonical(network.options, {}, OPTIONS, "macvlan")
    mode = opts.get(MODE, "bridge")
    if mode not in MODES:
        raise InvalidConfig(f"invalid value {mode!r} for option {MODE}: expected one of {', '.join(MODES)}")
    parent = opts.get(PARENT, "")
    if parent and not names.valid_ifname(parent):
        raise InvalidConfig(f"invalid parent interface name {parent!r}: at most {names.IFNAMSIZ} characters of [a-zA-Z0-9_.-]")
    return MacvlanPlan(
        network_id=network.id,
        parent=parent or dummy_name(network.id),
        own_parent=not parent,
        mode=mode,
        alias=names.link_alias(tag, network.id),
        internal=network.internal,
    )
