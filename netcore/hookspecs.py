"""The driver contract, the IPAM contract and the observer hooks, in lifecycle order.

Driver and IPAM hooks are commands: the core calls them on one plugin only (the
network's driver or IPAM driver) through a per-driver hook caller, so a plugin
writes plain methods and never asks "is this mine?". They are ``firstresult``: the
one answer comes back bare. Failure is an exception, never ``None``. ``delete_*``,
``leave`` and ``revoke_*`` treat "already gone" as success.

Observer hooks (``*_created``, ``*_joined`` ...) are broadcast to every plugin:
DNS, metrics and policy plugins hang off them. Their return values are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from netcore.models import (
        DriverInfo,
        Endpoint,
        EngineContext,
        InterfaceInfo,
        JoinInfo,
        Network,
        Pool,
        Sandbox,
    )

__all__ = ["hookspec", "hookimpl", "PROJECT"]

PROJECT = "netcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# ---------------------------------------------------------------- engine ---------


@hookspec(historic=True)
def configure(context: EngineContext) -> None:
    """Receive the engine's settings (root dir, instance tag, firewall).

    Called: once at engine start, and replayed to any plugin registered later.
    Returns: nothing.
    Since: 0.1
    """


@hookspec(firstresult=True)
def find_plugin(name: str, kind: str) -> object | None:
    """Provide a driver (``kind`` "driver") or IPAM driver (``kind`` "ipam") that is not loaded.

    Called: when a network names a driver or IPAM driver that no loaded plugin is
    registered under, before the core gives up with "not found". This is how plugins
    that live outside the engine (Docker's remote plugins) are found on first use.
    Returns: a plugin object, which the core registers under ``name`` like any other
    driver (its ``configure`` is replayed), or None when this plugin knows no such name.
    Raises: when it found ``name`` but could not load it (one line naming it and why).
    Since: 0.5
    """


# ---------------------------------------------------------------- driver ---------


@hookspec(firstresult=True)
def driver_info() -> DriverInfo:
    """Describe the driver: its name, data scope and connectivity scope.

    Called: when the driver is loaded and when a network is created with it.
    Returns: a ``DriverInfo``. A plugin that implements no driver hooks need not
    implement this. Capabilities the core asks for by flag rather than by driver
    name: ``gateway_bridge`` (with ``gateway_options``) offers the gateway network
    that gives containers on multi-host networks egress (Docker's docker_gwbridge;
    bridge declares it); the core creates it with the first driver, by name, that
    declares it, and refuses such a container with one line if none does.
    Since: 0.1 (gateway_bridge: 0.3)
    """


@hookspec(firstresult=True)
def create_network(network: Network) -> None:
    """Create the kernel side of ``network`` (a bridge, a VXLAN, or nothing at all).

    Called: after IPAM reserved the pool and the gateway, before the store commit.
    May assume: ``network.options`` holds the raw ``-o`` options; the name is unique.
    Must: reject unknown or ill-typed options with ``InvalidConfig`` before any
    kernel change; undo its own partial work before raising. Partner: ``delete_network``.
    Returns: None.
    Since: 0.1
    """


@hookspec(firstresult=True)
def restore_network(network: Network, endpoints: list[Endpoint]) -> None:
    """Re-create whatever kernel state of a stored network is missing (idempotent).

    Called: at engine start, for every network in the store (reconcile), e.g. after
    a reboot or after someone deleted the bridge by hand. ``endpoints`` are this host's
    endpoints on the network whose sandboxes still exist: a device made again must take
    their host-side interfaces back (a deleted bridge drops its ports).
    Not implemented: the network has no kernel state to restore.
    Since: 0.1
    """


@hookspec(firstresult=True)
def delete_network(network: Network) -> None:
    """Remove what ``create_network`` made. "Already gone" is success.

    Called: once no endpoint is left on the network.
    Returns: None.
    Since: 0.1
    """


# ---------------------------------------------------------------- endpoint -------


@hookspec(firstresult=True)
def create_endpoint(network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
    """Prepare an endpoint: check its options, choose what IPAM did not (the MAC).

    Called: after IPAM reserved ``endpoint.address``; before ``join``.
    Must undo: its own partial work before raising. Partner: ``delete_endpoint``.
    Returns: ``InterfaceInfo`` with fields the core left empty, or None to accept
    the endpoint as it is (``InterfaceInfo.mac_from_ip(endpoint)``: Docker's MAC derived
    from the address, what the built-in drivers return).
    Since: 0.1
    """


@hookspec(firstresult=True)
def delete_endpoint(network: Network, endpoint: Endpoint) -> None:
    """Forget an endpoint. "Already gone" is success.

    Called: after ``leave``, before IPAM releases the address.
    Returns: None.
    Since: 0.1
    """


@hookspec(firstresult=True)
def endpoint_oper_info(network: Network, endpoint: Endpoint) -> dict[str, Any] | None:
    """Driver-specific runtime facts about an endpoint, shown by ``inspect``.

    Returns: a JSON-able dict, or None for "nothing to add".
    Since: 0.1
    """


@hookspec(firstresult=True)
def network_oper_info(network: Network) -> dict[str, Any] | None:
    """Driver-specific runtime facts about a network, shown by ``network inspect``
    (under ``DriverState``), e.g. routed's address blocks and BGP sessions.

    Returns: a JSON-able dict, or None for "nothing to add".
    Since: 0.3
    """


# ---------------------------------------------------------------- join / leave ---


@hookspec(firstresult=True)
def join(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
    """Give ``sandbox`` an interface on ``network``.

    Called: after ``create_endpoint``, once the sandbox's netns exists.
    May assume: ``endpoint.ifname`` is the free name the interface must get in the
    sandbox (eth0, eth1 ...); ``sandbox.netns_path`` exists (None: host namespace).
    Must undo: its own partial work before raising. Partner: ``leave``.
    Returns: a ``JoinInfo``. The core then names the interface, turns IPv6 off on it,
    sets its address (MTU is the driver's business), brings it up and installs the
    gateway and routes.
    Since: 0.1
    """


@hookspec(firstresult=True)
def leave(network: Network, endpoint: Endpoint, sandbox: Sandbox, teardown: bool) -> None:
    """Take the endpoint's interface away from the sandbox. "Already gone" is success.

    Called: on disconnect, container stop or removal, and to roll back a ``join``;
    the sandbox may already be gone.
    May assume: with ``teardown`` True the whole sandbox goes: every endpoint leaves,
    then the core deletes ``sandbox.netns_path``, and the kernel destroys every
    interface still in that netns, a veth together with its peer, by itself (in the
    background, batched: cheaper than deleting them one by one; docs/performance.md).
    A driver may then leave those interfaces to the kernel; everything else it made
    (routes and links elsewhere, firewall entries, its own records) it still removes
    now, and it must not count the doomed interfaces as still in use. With
    ``teardown`` False (disconnect, rollback) the netns stays: delete the interface now.
    Returns: None.
    Since: 0.1; ``teardown`` since 0.4 (an impl may leave it out, as with any hook
    argument, and then always deletes: still correct, only slower).
    """


# ---------------------------------------------------------------- external -------


@hookspec(firstresult=True)
def program_external_connectivity(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
    """Forward the host ports in ``endpoint.ports`` to the endpoint's address.

    Called: after ``join`` when this endpoint gives the sandbox its default route
    and the sandbox publishes ports; again at engine start (so it must be idempotent).
    May assume: ``endpoint.ports`` are concrete (one host port each) and the core
    holds those ports on the host; ``EngineContext.firewall.publish`` does the DNAT.
    Not implemented: the network publishes no ports (host, none), like Docker.
    Partner: ``revoke_external_connectivity``.
    Since: 0.1
    """


@hookspec(firstresult=True)
def revoke_external_connectivity(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
    """Undo ``program_external_connectivity``. "Already gone" is success.

    Since: 0.1
    """


# ---------------------------------------------------------------- multi-host -----


@hookspec(firstresult=True)
def discover_new(node: dict[str, Any]) -> None:
    """A cluster node appeared (``{"address": ..., "self": bool}``).

    Not implemented: the driver does not care about other hosts.
    Since: 0.1
    """


@hookspec(firstresult=True)
def discover_delete(node: dict[str, Any]) -> None:
    """A cluster node went away. Partner of ``discover_new``.

    Since: 0.1
    """


@hookspec(firstresult=True)
def peer_add(network: Network, endpoint: Endpoint) -> None:
    """An endpoint on another host joined ``network`` (a global-scope network).

    Called: from the cluster watch, for every remote endpoint of every global network
    this engine knows, at start too; the driver decides whether it has local state
    to program (overlay: FDB and neighbour entries once a local container is on it).
    May assume: ``endpoint.host`` is the owning engine's advertised address (its VTEP),
    ``endpoint.address`` and ``endpoint.mac`` are set. Idempotent.
    Not implemented: the driver does not care about remote endpoints.
    Partner: ``peer_delete``.
    Since: 0.2
    """


@hookspec(firstresult=True)
def peer_delete(network: Network, endpoint: Endpoint) -> None:
    """A remote endpoint left ``network`` (or its host vanished). "Already gone" is success.

    Since: 0.2
    """


# ---------------------------------------------------------------- observers ------


@hookspec
def network_created(network: Network) -> None:
    """Broadcast after a network was created and committed."""


@hookspec
def network_deleted(network: Network) -> None:
    """Broadcast after a network was deleted."""


@hookspec
def endpoint_joined(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
    """Broadcast after an endpoint joined a sandbox and was committed."""


@hookspec
def endpoint_left(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
    """Broadcast after an endpoint left its sandbox."""


@hookspec
def endpoint_restored(network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
    """Broadcast at engine start for every endpoint found in the store after reconcile.

    Observers that keep state in memory (the embedded DNS) rebuild it from these.
    """


@hookspec
def peer_joined(network: Network, endpoint: Endpoint) -> None:
    """Broadcast when an endpoint on another host joined a global network (its names, for DNS)."""


@hookspec
def peer_left(network: Network, endpoint: Endpoint) -> None:
    """Broadcast when an endpoint on another host left a global network."""


@hookspec
def shutdown() -> None:
    """Broadcast when the engine stops (``Controller.close``): release sockets, threads and files.

    Every plugin, drivers included, is an instance of its own controller (an entry
    point names the class; netcore builds one per plugin manager), so this is where
    a driver stops the threads it started (routed: its cluster-watch retry). The
    kernel state stays: containers keep running across an engine restart. Called
    once; a failure is logged and does not keep the other plugins from stopping.

    Since: 0.2 (drivers: 0.3)
    """


# ---------------------------------------------------------------- IPAM -----------


@hookspec(firstresult=True)
def request_pool(
    network_id: str, subnet: str | None, ip_range: str | None, options: dict[str, str]
) -> Pool:
    """Reserve an address pool for a network.

    Called: at network create, before ``create_network``.
    May assume: ``subnet``/``ip_range`` are valid CIDRs if given (None: pick one).
    Must: refuse a subnet that overlaps another pool with ``Conflict``.
    Partner: ``release_pool``.
    Returns: the ``Pool``.
    Since: 0.1
    """


@hookspec(firstresult=True)
def release_pool(pool_id: str) -> None:
    """Give a pool back. "Already gone" is success."""


@hookspec(firstresult=True)
def request_address(pool_id: str, address: str | None, options: dict[str, str]) -> str:
    """Reserve one address of the pool (``address`` if given, else any free one).

    ``options["RequestAddressType"] == "com.docker.network.gateway"`` asks for the
    gateway (the first address unless given). Must raise ``AlreadyExists`` for an
    address in use, ``InvalidConfig`` for one outside the pool, ``Conflict`` when full.
    Returns: the bare IP.
    Since: 0.1
    """


@hookspec(firstresult=True)
def release_address(pool_id: str, address: str) -> None:
    """Give an address back. "Already gone" is success."""
