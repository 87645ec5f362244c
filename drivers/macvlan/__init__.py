"""The macvlan driver: containers get macvlan interfaces stacked on a host interface.

Docker's macvlan, written as a third-party driver would be: only the public ``netcore``
API and the OS layer (``netcore.osl``), kernel work as named steps with undos. Each
endpoint is one macvlan link made directly inside the sandbox under its final name
(eth0, eth1 ...) on the network's parent. No gateway bridge, no NAT, no published
ports: the containers sit on the parent's own L2 segment, and the gateway is whatever
router lives there (none at all with ``--internal``).

Options: ``-o parent=IFACE`` (an interface in the engine's netns) and
``-o macvlan_mode=bridge|private|vepa|passthru``. Without a parent the network gets a
parent link of its own, ``dm-<id>``, as Docker does (a dummy link; on a kernel without
dummy links, one end of a veth pair), removed with the network. Two networks never
share a parent (Docker's rule: their frames would mix).
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from netcore import (
    Conflict,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    InvalidConfig,
    JoinInfo,
    KernelError,
    Network,
    Sandbox,
    Step,
    hookimpl,
    run_steps,
    undo_steps,
)
from netcore.osl import links, netns

from drivers.macvlan.plan import MacvlanPlan, plan_network

__all__ = ["MacvlanDriver", "plugin"]


class MacvlanDriver:
    def __init__(self) -> None:
        self.ctx: EngineContext | None = None
        self._parents: dict[str, str] = {}  # parent interface -> id of the network using it
        self._lock = threading.Lock()

    @hookimpl
    def configure(self, context: EngineContext) -> None:
        self.ctx = context

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="macvlan")

    def _plan(self, network: Network) -> MacvlanPlan:
        assert self.ctx is not None, "macvlan driver used before configure()"
        return plan_network(network, self.ctx.tag)

    # ----------------------------------------------------------------- network ---

    def _network_steps(self) -> tuple[Step, ...]:
        return (
            Step("macvlan.claim", self._claim, self._unclaim),
            Step("macvlan.parent", _make_parent, _remove_parent, when=lambda p: p.own_parent),
        )

    def _claim(self, plan: MacvlanPlan) -> None:
        """Reserve the parent for this network (refused if another network has it)."""
        with self._lock:
            owner = self._parents.get(plan.parent)
            if owner not in (None, plan.network_id):
                raise Conflict(f"network {owner[:12]} is already using parent interface {plan.parent}")
            self._parents[plan.parent] = plan.network_id

    def _unclaim(self, plan: MacvlanPlan) -> None:
        with self._lock:
            if self._parents.get(plan.parent) == plan.network_id:
                del self._parents[plan.parent]

    @hookimpl
    def create_network(self, network: Network) -> None:
        plan = self._plan(network)
        if not plan.own_parent:
            with netns.host() as ipr:
                if links.lookup(ipr, plan.parent) is None:
                    raise InvalidConfig(f"-o parent interface was not found on the host: {plan.parent}")
        run_steps(self._network_steps(), plan)

    @hookimpl
    def restore_network(self, network: Network, endpoints: list[Endpoint]) -> None:
        plan = self._plan(network)
        self._claim(plan)
        with netns.host() as ipr:
            present = links.lookup(ipr, plan.parent) is not None
        if plan.own_parent and not present:
            _make_parent(plan)  # new containers join again; those on the old parent lost their link with it

    @hookimpl
    def delete_network(self, network: Network) -> None:
        undo_steps(self._network_steps(), self._plan(network), f"delete network {network.name}")

    @hookimpl
    def network_oper_info(self, network: Network) -> dict[str, Any] | None:
        plan = self._plan(network)
        return {"parent": plan.parent, "macvlan_mode": plan.mode, "parent_created": plan.own_parent}

    # ----------------------------------------------------------------- endpoint --

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        return InterfaceInfo.mac_from_ip(endpoint)

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        return None  # the macvlan link lives and dies with the join

    def _join_steps(self, endpoint: Endpoint, sandbox: Sandbox) -> tuple[Step, ...]:
        def make(p: MacvlanPlan) -> None:
            with netns.host() as ipr:
                parent = links.lookup(ipr, p.parent)
                if parent is None:
                    raise KernelError("join", p.parent, "the parent interface is missing")
                try:
                    links.create(ipr, endpoint.ifname, "macvlan", lower=parent, netns_path=sandbox.netns_path,
                                 mac=endpoint.mac, macvlan_mode=p.mode)
                except KernelError as exc:
                    if p.mode == "passthru" and exc.cause == errno.EINVAL:  # the kernel's word for "taken"
                        raise Conflict(f"parent interface {p.parent} is in passthru mode and already has a container") from None
                    raise

        def unmake(p: MacvlanPlan) -> None:
            if sandbox.netns_path and netns.exists(sandbox.netns_path):
                with netns.netlink(sandbox.netns_path) as ipr:
                    links.delete(ipr, endpoint.ifname)

        return (Step("macvlan.link", make, unmake),)

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        if sandbox.netns_path is None:
            raise InvalidConfig("the macvlan driver cannot join the host's own network namespace")
        plan = self._plan(network)
        run_steps(self._join_steps(endpoint, sandbox), plan)
        return JoinInfo(created_in_sandbox=True, gateway=None if plan.internal else network.gateway)

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
        if teardown:
            return  # the macvlan link goes with the sandbox's netns
        undo_steps(self._join_steps(endpoint, sandbox), self._plan(network), f"leave network {network.name}")

    @hookimpl
    def endpoint_oper_info(self, network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
        plan = self._plan(network)
        return {"parent": plan.parent, "macvlan_mode": plan.mode}


def _make_parent(plan: MacvlanPlan) -> None:
    """The network's own parent: a dummy link as Docker makes, or on a kernel without dummy
    links a veth pair (``dm-<id>`` and its peer ``dp-<id>``, both up: a macvlan follows its
    parent's carrier)."""
    with netns.host() as ipr:
        try:
            links.create(ipr, plan.parent, "dummy", alias=plan.alias, up=True)
        except links.UnsupportedKind:
            peer = "dp-" + plan.parent[3:]
            links.create(ipr, plan.parent, "veth", alias=plan.alias, up=True, peer={"ifname": peer})
            try:
                links.set_up(ipr, links.lookup(ipr, peer))  # type: ignore[arg-type]
            except BaseException:
                links.delete(ipr, plan.parent)
                raise


def _remove_parent(plan: MacvlanPlan) -> None:
    """Delete the parent the network made, never a link of that name that another owner tagged."""
    with netns.host() as ipr:
        index = links.lookup(ipr, plan.parent)
        link = links.get(ipr, index) if index is not None else None
        if link is None or link.alias != plan.alias:
            return
        links.delete(ipr, plan.parent)
