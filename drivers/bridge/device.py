"""The bridge device and its gateway address."""

from __future__ import annotations

from netcore.osl import addrs, links, netns, sysctl

from drivers.bridge.plan import BridgePlan

__all__ = ["create", "delete", "exists", "add_gateway", "enable_forwarding"]


def exists(plan: BridgePlan) -> bool:
    with netns.host() as ipr:
        return links.lookup(ipr, plan.bridge) is not None


def create(plan: BridgePlan) -> None:
    with netns.host() as ipr:
        links.create_bridge(ipr, plan.bridge, plan.alias, plan.mac, mtu=plan.mtu)


def delete(plan: BridgePlan) -> None:
    """Delete the network's bridge, never a link of that name that another owner tagged."""
    with netns.host() as ipr:
        index = links.lookup(ipr, plan.bridge)
        link = links.get(ipr, index) if index is not None else None
        if link is not None and link.alias not in (None, plan.alias):
            return
        links.delete(ipr, plan.bridge)


def add_gateway(plan: BridgePlan) -> None:
    if plan.gateway_cidr:
        with netns.host() as ipr:
            index = links.lookup(ipr, plan.bridge)
            addrs.add(ipr, index, plan.gateway_cidr)


def enable_forwarding(plan: BridgePlan) -> None:
    """Routing between the bridge and the world needs IPv4 forwarding on, as Docker sets it.

    ``route_localnet`` lets a connection from the host's 127.0.0.1 to a published
    port be routed onto the bridge after DNAT (the engine's table then masquerades
    it, and keeps containers from reaching the host's loopback in return).
    """
    sysctl.enable_ip_forward()
    sysctl.write(sysctl.conf_key(plan.bridge, "route_localnet"), 1)
