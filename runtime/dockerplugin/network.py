"""``/NetworkDriver.*`` for one netcore driver, served to dockerd as ``netcore-<driver>``.

Networks go through the controller (``create_network``/``delete_network``), so they
are netcore networks like any other. Endpoints follow Docker's split: CreateEndpoint
reserves the address Docker chose in netcore's IPAM (unless netcore-ipam gave it)
and asks the driver; Join has the driver make the interface in the host namespace
under a temporary name that dockerd moves into the container (libnetwork's rule; on
20.10 the container's netns does not exist yet at Join); Leave and DeleteEndpoint
undo. Unknown ids on the way down are success (dockerd cleans up stale endpoints at
start). No handler ever calls dockerd.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import queue
import threading
from typing import Any

from netcore import GLOBAL, AlreadyExists, Conflict, Endpoint, InvalidConfig, JoinInfo, Network, NotFound, PortBinding, Sandbox
from netcore.controller import Controller
from netcore.steps import Transaction

from runtime.dockerplugin import state
from runtime.dockerplugin.transport import Methods

__all__ = ["NetworkDriverApi", "Deferred", "temp_ifname", "delete_endpoint_record", "reap_stale", "unpublish"]

log = logging.getLogger("netcore.dockerplugin")

NAME_OPTION = "netcore.network"  # -o netcore.network=NAME: the network's name in netcore
ENDPOINT = "endpoint"


def temp_ifname(endpoint_id: str) -> str:
    """The interface's name in the host until dockerd moves it (IFNAMSIZ, netcore's prefix)."""
    return "ncd" + endpoint_id[:12]


class Deferred:
    """One worker that takes interfaces down after Leave has been answered.

    Deleting a veth costs the kernel an RCU grace period (docs/performance.md), most of a container's
    plugin time; dockerd waits for Leave, not for that. The endpoint's record says it
    left at once; what the driver still does touches only that endpoint's own objects
    (its veth, routed's /32 route, which a new endpoint with the same address replaces).
    DeleteNetwork and the engine's stop wait until the queue is empty.
    """

    def __init__(self, ctl: Controller, name: str = "docker-plugin-leave") -> None:
        self.ctl, self.name = ctl, name
        self.jobs: queue.Queue[Any] = queue.Queue()
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit(self, fn: Any) -> None:
        self.jobs.put(fn)

    def drain(self) -> None:
        self.jobs.join()

    def _work(self) -> None:
        while True:
            fn = self.jobs.get()
            try:
                with self.ctl.lock:
                    fn()
            except Exception:
                log.exception("%s: deferred leave", self.name)
            finally:
                self.jobs.task_done()


class NetworkDriverApi:
    def __init__(self, ctl: Controller, driver: str, ready: threading.Event, deferred: Deferred) -> None:
        self.ctl, self.driver, self.ready, self.deferred = ctl, driver, ready, deferred

    def methods(self) -> Methods:
        m = {
            "GetCapabilities": self.capabilities,
            "CreateNetwork": self.create_network,
            "DeleteNetwork": self.delete_network,
            "CreateEndpoint": self.create_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
            "Join": self.join,
            "Leave": self.leave,
            "EndpointOperInfo": self.oper_info,
            "ProgramExternalConnectivity": self.program_external,
            "RevokeExternalConnectivity": self.revoke_external,
            "DiscoverNew": lambda a: {},
            "DiscoverDelete": lambda a: {},
            "AllocateNetwork": lambda a: {"Options": {}},
            "FreeNetwork": lambda a: {},
        }
        return {"NetworkDriver." + k: self._guard(v, drain=k == "DeleteNetwork") for k, v in m.items()}

    def _guard(self, fn: Any, drain: bool) -> Any:
        def call(args: dict[str, Any]) -> dict[str, Any]:
            if not self.ready.wait(60):
                raise NotFound("netcore engine is still starting")
            if drain:
                self.deferred.drain()
            with self.ctl.lock:
                return fn(args)
        return call

    # ------------------------------------------------------------ networks ----

    def capabilities(self, a: dict[str, Any]) -> dict[str, Any]:
        info = self.ctl.driver_info(self.driver)
        # local: Docker's global scope needs a cluster store; netcore's etcd does that part
        return {"Scope": "local", "ConnectivityScope": GLOBAL if info.connectivity_scope == GLOBAL else "local"}

    def create_network(self, a: dict[str, Any]) -> dict[str, Any]:
        nid = _id(a, "NetworkID")
        if state.network_of(self.ctl, nid) is not None:
            return {}
        opts = a.get("Options") or {}
        generic = {str(k): str(v) for k, v in (opts.get("com.docker.network.generic") or {}).items()}
        asked = generic.pop(NAME_OPTION, "")
        internal = bool(opts.get("com.docker.network.internal"))
        if a.get("IPv6Data"):
            raise InvalidConfig("netcore networks are IPv4 only: drop --ipv6")
        v4 = a.get("IPv4Data") or []
        if len(v4) > 1:
            raise InvalidConfig("netcore networks take one IPv4 subnet")
        labels = {state.DOCKER_ID: nid}
        subnet = gateway = ip_range = None
        info = self.ctl.driver_info(self.driver)
        if v4:
            subnet = v4[0].get("Pool") or None
            gateway = (v4[0].get("Gateway") or "").split("/")[0] or None
            pending = self._take_pending(subnet)  # netcore-ipam's pool (whatever address space the caller named)
            if pending is not None or v4[0].get("AddressSpace") in (state.LOCAL_SPACE, state.GLOBAL_SPACE):
                labels[state.IPAM_LABEL] = state.NETCORE_IPAM
                ip_range = (pending or {}).get("ip_range")
                asked = asked or str((pending or {}).get("network_id", "")).partition(":")[2]
            if info.ipam:  # the driver's own addressing (routed: 169.254.1.1, no gateway in the subnet)
                gateway = None
        elif info.addressing:
            raise InvalidConfig(f"netcore-{self.driver} networks need an IPv4 subnet")
        existing = state.network_named(self.ctl, asked) if asked else None
        if existing is None and not asked and state.IPAM_LABEL in labels and subnet:
            # netcore-ipam gave this host the pool of a network of the cluster (--ipam-opt netcore.network=NAME)
            existing = next((n for n in self.ctl.networks() if n.scope == GLOBAL and n.subnet == subnet and n.driver == self.driver), None)
        if existing is not None:
            self._adopt(nid, existing, subnet)
            return {}
        net = self.ctl.create_network(asked or f"docker-{nid[:12]}", self.driver, subnet=subnet, gateway=gateway, ip_range=ip_range,
                                      options=generic, labels=labels, internal=internal)
        try:
            state.remember(self.ctl, nid, net)
        except BaseException:
            self.ctl.delete_network(net.id)
            raise
        return {}

    def _adopt(self, nid: str, net: Network, subnet: str | None) -> None:
        """Another host made the global network of that name (netcore's cluster has it): this
        host's Docker network becomes one more name for it."""
        if net.scope != GLOBAL or net.driver != self.driver:
            raise AlreadyExists(f"network with name {net.name} already exists")
        self.ctl.firewall.coexist()  # dockerd's FORWARD policy DROP: netcore's interfaces past it (create_network does it too)
        if subnet and net.subnet and subnet != net.subnet:
            raise Conflict(f"network {net.name} spans hosts with subnet {net.subnet}: create it with "
                           f"--ipam-driver netcore-ipam --ipam-opt netcore.network={net.name}")
        state.remember(self.ctl, nid, net)

    def _take_pending(self, subnet: str | None) -> dict[str, Any] | None:
        """netcore-ipam reserved this pool before the network existed: free it for the network
        to reserve at once (under the engine's lock); returns its record."""
        for rec in self.ctl.store.list("pool"):
            if str(rec.get("network_id", "")).partition(":")[0] == state.PENDING and rec.get("subnet") == subnet:
                self.ctl.hooks.ipam("default").release_pool(pool_id=rec["pool_id"])
                return rec
        return None

    def delete_network(self, a: dict[str, Any]) -> dict[str, Any]:
        nid = _id(a, "NetworkID")
        net = state.network_of(self.ctl, nid)
        if net is not None:
            for ep in self.ctl.endpoints(net):  # endpoints dockerd forgot (it deletes them first)
                if ep.name.startswith("docker-") and (net.scope != GLOBAL or not ep.host or ep.host == self._me()):
                    delete_endpoint_record(self.ctl, net, ep)
            if state.last_user(self.ctl, nid, net):
                self.ctl.delete_network(net.id)
            state.forget(self.ctl, nid, net)
        return {}

    def _me(self) -> str:
        return self.ctl.cluster.advertise if self.ctl.cluster is not None else ""

    # ------------------------------------------------------------ endpoints ---

    def _network(self, a: dict[str, Any]) -> Network:
        nid = _id(a, "NetworkID")
        net = state.network_of(self.ctl, nid)
        if net is None:
            raise NotFound(f"network {nid[:12]} not found in netcore")
        return net

    def create_endpoint(self, a: dict[str, Any]) -> dict[str, Any]:
        net = self._network(a)
        eid = _id(a, "EndpointID")
        iface = a.get("Interface") or {}
        if state.endpoint_of(self.ctl, eid) is not None:
            return {}
        address, mac = iface.get("Address") or None, iface.get("MacAddress") or None
        if iface.get("AddressIPv6"):
            raise InvalidConfig("netcore networks are IPv4 only")
        if net.subnet and not address:
            raise InvalidConfig("the endpoint has no IPv4 address")
        if address:
            try:
                if ipaddress.IPv4Interface(address).ip not in ipaddress.IPv4Network(net.subnet or "0.0.0.0/32"):
                    raise InvalidConfig(f"address {address} is not in subnet {net.subnet}")
            except ValueError:
                raise InvalidConfig(f"invalid address {address!r}") from None
        ep = Endpoint(id=eid, network_id=net.id, name=f"docker-{eid[:12]}", address=address, mac=mac, ifname=temp_ifname(eid))
        drv = self.ctl.hooks.driver(net.driver)
        reap_stale(self.ctl, net, ep.ip, keep=eid)  # Docker's IPAM gave the address out again: its old holder is gone
        with Transaction(f"create endpoint {eid[:12]}") as tx:
            if address and net.pool_id and not state.uses_netcore_ipam(net):
                ipam = state.ipam_of(self.ctl, net)
                ip = ipam.request_address(pool_id=net.pool_id, address=ep.ip, options={})
                tx.push("ipam.address", lambda: ipam.release_address(pool_id=net.pool_id, address=ip))
            info = drv.create_endpoint(network=net, endpoint=ep)
            tx.push("endpoint.create", lambda: drv.delete_endpoint(network=net, endpoint=ep))
            if info is not None:
                ep.mac = ep.mac or info.mac
            if net.scope == GLOBAL and self.ctl.cluster is not None:  # the other hosts learn of it (overlay: FDB)
                ep.host = self.ctl.cluster.advertise
                self.ctl.cluster.publish(ep)
                tx.push("endpoint.cluster", lambda: self.ctl.cluster.withdraw(ep.id))
            self.ctl.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id, create=True)
        return {"Interface": {"MacAddress": ep.mac}} if ep.mac and not mac else {}

    def delete_endpoint(self, a: dict[str, Any]) -> dict[str, Any]:
        ep = state.endpoint_of(self.ctl, _id(a, "EndpointID"))
        if ep is not None:
            delete_endpoint_record(self.ctl, self.ctl.network(ep.network_id), ep)
        return {}

    def join(self, a: dict[str, Any]) -> dict[str, Any]:
        net = self._network(a)
        eid = _id(a, "EndpointID")
        ep = state.endpoint_of(self.ctl, eid)
        if ep is None:
            raise NotFound(f"endpoint {eid[:12]} not found in netcore")
        drv = self.ctl.hooks.driver(net.driver)
        with Transaction(f"join endpoint {eid[:12]}") as tx:
            if ep.sandbox_id:  # a repeated Join: make it afresh
                drv.leave(network=net, endpoint=ep, sandbox=_sandbox(ep), teardown=False)
            ep.sandbox_id = a.get("SandboxKey") or "docker"
            info = drv.join(network=net, endpoint=ep, sandbox=_sandbox(ep)) or JoinInfo()
            tx.push("endpoint.join", lambda: drv.leave(network=net, endpoint=ep, sandbox=_sandbox(ep), teardown=False))
            ep.gateway = info.gateway
            self.ctl.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id)
        routes = [{"Destination": r.destination, "RouteType": 0 if r.next_hop else 1, **({"NextHop": r.next_hop} if r.next_hop else {})}
                  for r in info.static_routes]
        if info.gateway and not _inside(info.gateway, net.subnet) and not any(r["Destination"] == f"{info.gateway}/32" for r in routes):
            routes.insert(0, {"Destination": f"{info.gateway}/32", "RouteType": 1})  # 169.254.1.1: on-link, as Calico does
        out: dict[str, Any] = {
            "InterfaceName": {"SrcName": info.src_ifname if info.src_ifname and not info.created_in_sandbox else ep.ifname, "DstPrefix": "eth"},
            "StaticRoutes": routes,
            # never docker_gwbridge: its pool comes from Docker's IPAM, which knows nothing of
            # netcore's pools (an overlay's lives in its own netns) and so may pick the same one
            "DisableGatewayService": True,
        }
        if info.gateway:
            out["Gateway"] = info.gateway
        return out

    def leave(self, a: dict[str, Any]) -> dict[str, Any]:
        ep = state.endpoint_of(self.ctl, _id(a, "EndpointID"))
        if ep is None or not ep.sandbox_id:
            return {}
        net = self.ctl.network(ep.network_id)
        drv = self.ctl.hooks.driver(net.driver)
        left = dataclasses.replace(ep)
        ep.sandbox_id, ep.gateway = "", None
        self.ctl.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id)
        self.deferred.submit(lambda: drv.leave(network=net, endpoint=left, sandbox=_sandbox(left), teardown=False))
        return {}

    def program_external(self, a: dict[str, Any]) -> dict[str, Any]:
        """``docker run -p``: dockerd leaves ports to the driver of the gateway endpoint.
        netcore holds the host ports and its driver DNATs them, as for its own containers
        (``docker port`` shows nothing: dockerd reads remote drivers' ports nowhere)."""
        ep = state.endpoint_of(self.ctl, _id(a, "EndpointID"))
        if ep is None:
            raise NotFound(f"endpoint {a.get('EndpointID', '')[:12]} not found in netcore")
        wanted = _port_bindings((a.get("Options") or {}).get("com.docker.network.portmap") or [])
        net = self.ctl.network(ep.network_id)
        if not wanted or not self.ctl.hooks.implements(net.driver, "program_external_connectivity"):
            return {}
        drv = self.ctl.hooks.driver(net.driver)
        unpublish(self.ctl, net, ep)
        with Transaction(f"publish ports of endpoint {ep.id[:12]}") as tx:
            ep.ports = self.ctl.ports.reserve(wanted)
            tx.push("ports", lambda: self.ctl.ports.release(ep.ports))
            drv.program_external_connectivity(network=net, endpoint=ep, sandbox=_sandbox(ep))
            tx.push("publish", lambda: drv.revoke_external_connectivity(network=net, endpoint=ep, sandbox=_sandbox(ep)))
            self.ctl.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id)
        return {}

    def revoke_external(self, a: dict[str, Any]) -> dict[str, Any]:
        ep = state.endpoint_of(self.ctl, _id(a, "EndpointID"))
        if ep is not None and ep.ports:
            net = self.ctl.network(ep.network_id)
            unpublish(self.ctl, net, ep)
            self.ctl.store.put(ENDPOINT, ep.id, ep.to_dict(), parent=net.id)
        return {}

    def restore(self) -> None:
        """Engine start: hold and program again the ports of Docker's endpoints (the core does
        that only for its own sandboxes)."""
        for net in self.ctl.networks():
            if net.driver != self.driver or state.DOCKER_ID not in net.labels:
                continue
            for ep in self.ctl.endpoints(net):
                if ep.ports:
                    self.ctl.ports.hold(ep.ports)
                    try:
                        self.ctl.hooks.driver(net.driver).program_external_connectivity(network=net, endpoint=ep, sandbox=_sandbox(ep))
                    except Exception as exc:
                        log.warning("restore published ports of endpoint %s: %s", ep.id[:12], exc)

    def oper_info(self, a: dict[str, Any]) -> dict[str, Any]:
        ep = state.endpoint_of(self.ctl, _id(a, "EndpointID"))
        if ep is None:
            return {"Value": {}}
        return {"Value": self.ctl.endpoint_oper_info(self.ctl.network(ep.network_id), ep)}


def delete_endpoint_record(ctl: Controller, net: Network, ep: Endpoint) -> None:
    """Everything of a Docker endpoint: ports, interface, driver state, cluster entry, the
    address (unless netcore-ipam's: dockerd releases it), the record."""
    drv = ctl.hooks.driver(net.driver)
    unpublish(ctl, net, ep)  # dockerd revokes first; after a crash it may not have
    if ep.sandbox_id:
        drv.leave(network=net, endpoint=ep, sandbox=_sandbox(ep), teardown=False)
    drv.delete_endpoint(network=net, endpoint=ep)
    if net.scope == GLOBAL and ctl.cluster is not None:
        ctl.cluster.withdraw(ep.id)
    if ep.ip and net.pool_id and not state.uses_netcore_ipam(net):
        state.ipam_of(ctl, net).release_address(pool_id=net.pool_id, address=ep.ip)
    ctl.store.delete(ENDPOINT, ep.id)


def reap_stale(ctl: Controller, net: Network, address: str | None, keep: str = "") -> None:
    """Docker endpoints of ``net`` on ``address`` other than ``keep``: records dockerd forgot.

    dockerd deletes the endpoints of containers that died with it at its next start, but
    before any remote driver is loaded, so their DeleteEndpoint never comes (their IPAM
    release does). An address that Docker's IPAM hands out again, or that netcore-ipam is
    told to release while an endpoint still holds it, marks such a record."""
    if not address:
        return
    for ep in ctl.endpoints(net):
        if ep.id != keep and ep.ip == address and ep.name.startswith("docker-"):
            log.info("docker plugin: removing stale endpoint %s (%s)", ep.id[:12], address)
            delete_endpoint_record(ctl, net, ep)


def unpublish(ctl: Controller, net: Network, ep: Endpoint) -> None:
    if not ep.ports:
        return
    try:
        ctl.hooks.driver(net.driver).revoke_external_connectivity(network=net, endpoint=ep, sandbox=_sandbox(ep))
    finally:
        ctl.ports.release(ep.ports)
        ep.ports = []


_PROTOS = {6: "tcp", 17: "udp", 132: "sctp"}


def _port_bindings(portmap: list[Any]) -> list[PortBinding]:
    """libnetwork's ``types.PortBinding`` list (``Proto`` as an IP protocol number)."""
    out = []
    for p in portmap:
        try:
            proto = _PROTOS[int(p.get("Proto", 6))]
            port, host, end = int(p["Port"]), int(p.get("HostPort") or 0), int(p.get("HostPortEnd") or 0)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InvalidConfig(f"invalid port mapping {p!r}") from None
        out.append(PortBinding(container_port=port, proto=proto, host_ip=p.get("HostIP") or "", host_port=host,
                               host_port_end=end if end != host else 0))
    return out


_HOST_NETNS = f"/proc/{os.getpid()}/ns/net"


def _sandbox(ep: Endpoint) -> Sandbox:
    """dockerd owns the container's netns and moves the interface there itself: the driver
    makes the container's end in the engine's (the host's) own namespace, under the
    temporary name, as if that were the sandbox (overlay makes its veths in a namespace of
    its own, so "no netns" would leave the end there)."""
    return Sandbox(id=ep.id, netns_path=_HOST_NETNS, name=ep.name)


def _inside(ip: str, subnet: str | None) -> bool:
    return bool(subnet) and ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(subnet)


def _id(a: dict[str, Any], key: str) -> str:
    value = a.get(key)
    if not isinstance(value, str) or not value or len(value) > 128 or not value.isalnum():
        raise InvalidConfig(f"missing or invalid {key}")
    return value
