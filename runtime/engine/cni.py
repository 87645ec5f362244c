"""CNI attachments: a CNI runtime's netns on a netcore network (the engine's half of ``netcore-cni``).

The runtime (podman, containerd, a kubelet) makes the netns and deletes it; netcore
only puts endpoints in it. One sandbox per CNI container id, marked ``external`` so that
the core never deletes its netns and the engine never takes it for one of its own
containers; one endpoint per ``CNI_IFNAME``. Everything else is netcore's usual path:
addresses from the network's IPAM, the driver's data path, the embedded DNS (the
sandbox's name is K8S_POD_NAME or the container id, and its short id), published
ports. The protocol itself (versions, result shapes, error codes) is ``runtime.cni.protocol``.

DEL answers once the records are gone and hands the driver's part (deleting the veth
costs the kernel an RCU grace period, most of a DEL) to a worker, as the Docker plugin's
Leave does. An ADD of the same container waits for its pending work first (a new ``eth0``
in the same netns must not meet the old one); another container's does not; the engine's
reset and stop wait for all of it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from typing import Any

from netcore import AlreadyExists, Attachment, Conflict, Endpoint, InvalidConfig, NetcoreError, Network, NotFound, PortBinding, Sandbox
from netcore.controller import Controller
from netcore.dns.records import resolution_enabled
from netcore.dns.server import ADDRESS as DNS_ADDRESS

from runtime.dockerplugin.network import Deferred

__all__ = ["CniAttachments"]

log = logging.getLogger("netcore.cni")


class CniAttachments:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.deferred = Deferred(ctl, "cni-del")
        self._pending: Counter[str] = Counter()  # container id -> driver work handed off, not yet done
        self._done = threading.Condition()

    def close(self) -> None:
        """Wait for the interfaces that DELs handed off (the engine's stop)."""
        self.deferred.drain()

    def add(self, container_id: str, ifname: str, netns: str, network: str, name: str = "", aliases: list[str] | None = None,
            ports: list[PortBinding] | None = None, ip: str | None = None) -> dict[str, Any]:
        """ADD: the endpoint and what the runtime's result needs of it. A second ADD for the
        same container and interface is refused (the spec wants a DEL in between)."""
        if not os.path.exists(netns):
            raise InvalidConfig(f"netns {netns} does not exist")
        ctl = self.ctl
        self._wait(container_id)  # outside the lock: the worker takes it
        with ctl.lock:
            net = ctl.network(network)
            if ctl.driver_info(net.driver).host_namespace:
                raise InvalidConfig(f"network {net.name} ({net.driver}) has no interface to give a CNI container")
            sandbox = self._reap_stale(ctl.sandbox(container_id), netns)
            att = Attachment(network=net.id, ip=ip, aliases=tuple(aliases or ()), ifname=ifname)
            fresh = sandbox is None
            if sandbox is None:
                sandbox = ctl.setup_sandbox(container_id, name or container_id, [att], netns_path=netns)
                ep = ctl.sandbox_endpoints(sandbox)[0]
            else:
                if any(e.ifname == ifname for e in ctl.sandbox_endpoints(sandbox)):
                    raise AlreadyExists(f"container {container_id} already has interface {ifname}: DEL it before another ADD")
                ep = ctl.connect(net.id, container_id, ip=ip, aliases=aliases or (), ifname=ifname)
            if ports:  # this ADD's portMappings, to this attachment's address; they go with its DEL
                try:
                    ep = ctl.publish_ports(net.id, container_id, ports)
                except BaseException:  # all or nothing: the ADD's endpoint goes too
                    if fresh:
                        self._forget(sandbox)
                    else:
                        try:
                            ctl.disconnect(net.id, container_id)
                        except NetcoreError as exc:
                            log.warning("cni ADD %s/%s: rollback: %s", container_id[:12], ifname, exc)
                    raise
                # CNI's convention (the portmap plugin's): the plugin programs the DNAT, the
                # runtime holds the host port (podman binds it for conmon after ADD)
                ctl.ports.release(ep.ports)
            return self._result(net, ep, netns, resolution_enabled(net, sandbox))

    def _reap_stale(self, sandbox: Sandbox | None, netns: str) -> Sandbox | None:
        """The sandbox of this container id, unless it is a leftover (a DEL that never came)
        whose netns is gone: that one goes, and the ADD starts afresh."""
        if sandbox is None:
            return None
        if not sandbox.external:
            raise Conflict(f"container id {sandbox.id[:12]} is a netcore container's")
        if sandbox.netns_path == netns:
            return sandbox
        if sandbox.netns_path and os.path.exists(sandbox.netns_path):
            raise Conflict(f"container {sandbox.id} is attached in netns {sandbox.netns_path}, not {netns}")
        self._forget(sandbox)
        return None

    def _result(self, net: Network, ep: Endpoint, netns: str, dns: bool) -> dict[str, Any]:
        """Version-neutral: ``runtime.cni`` shapes it for the version the runtime asked. The
        host side the driver made (its ``endpoint_oper_info``: ``bridge``, ``host_interface``)
        is listed when that link is in the host's netns (an overlay's veth is not)."""
        host = []
        info = self.ctl.endpoint_oper_info(net, ep)
        for key in ("bridge", "host_interface"):
            name = info.get(key)
            if isinstance(name, str) and name and self.ctl.kernel.link_index(None, name) is not None:
                host.append({"name": name})
        out: dict[str, Any] = {"interface": {"name": ep.ifname, "mac": ep.mac or "", "sandbox": netns}, "host_interfaces": host,
                               "address": ep.address or "", "gateway": ep.gateway or "", "routes": [], "ports": []}
        if ep.gateway:
            out["routes"].append({"dst": "0.0.0.0/0", "gw": ep.gateway})
        out["ports"] = [p.to_dict() for p in ep.ports]
        out["dns"] = {"nameservers": [DNS_ADDRESS]} if dns else {}  # the embedded DNS, inside the netns
        return out

    def delete(self, container_id: str, ifname: str) -> dict[str, Any]:
        """DEL: whatever is left of that interface goes; nothing left is success (repeats,
        an engine that lost the record, a netns already deleted)."""
        ctl = self.ctl
        with ctl.lock:
            sandbox = ctl.sandbox(container_id)
            if sandbox is None or not sandbox.external:
                return {}
            eps = ctl.sandbox_endpoints(sandbox)
            ep = next((e for e in eps if e.ifname == ifname), None)
            if ep is not None and len(eps) > 1:
                try:
                    ctl.disconnect(ep.network_id, container_id, defer=self._defer(container_id))
                except NetcoreError as exc:  # the records are gone; what failed was already gone with the netns
                    log.info("cni DEL %s/%s: %s", container_id[:12], ifname, exc)
            elif ep is not None or not eps:
                self._forget(sandbox, defer=True)
            return {}

    def _forget(self, sandbox: Sandbox, defer: bool = False) -> None:
        try:
            self.ctl.teardown_sandbox(sandbox.id, defer=self._defer(sandbox.id) if defer else None)
        except NetcoreError as exc:
            log.info("cni DEL %s: %s", sandbox.id[:12], exc)

    def _defer(self, container_id: str) -> Any:
        """The ``defer`` for the core: the work goes to the worker, counted for ``_wait``."""

        def submit(fn: Any) -> None:
            def job() -> None:
                try:
                    fn()
                finally:
                    with self._done:
                        self._pending[container_id] -= 1
                        if self._pending[container_id] <= 0:
                            del self._pending[container_id]
                        self._done.notify_all()

            with self._done:
                self._pending[container_id] += 1
            self.deferred.submit(job)

        return submit

    def _wait(self, container_id: str) -> None:
        with self._done:
            self._done.wait_for(lambda: container_id not in self._pending)

    def check(self, container_id: str, ifname: str, netns: str, network: str, address: str = "") -> dict[str, Any]:
        """CHECK: the record, the network and the interface in the netns are all still there."""
        ctl = self.ctl
        if not os.path.exists(netns):
            raise InvalidConfig(f"netns {netns} does not exist")
        with ctl.lock:
            net = ctl.network(network)
            sandbox = ctl.sandbox(container_id)
            ep = next((e for e in ctl.sandbox_endpoints(sandbox) if e.ifname == ifname), None) if sandbox and sandbox.external else None
            if ep is None:
                raise NotFound(f"container {container_id} has no interface {ifname} on network {net.name}")
            if ep.network_id != net.id:
                raise Conflict(f"interface {ifname} of container {container_id} is on another network")
            if sandbox is not None and sandbox.netns_path != netns:
                raise Conflict(f"container {container_id} is attached in netns {sandbox.netns_path}, not {netns}")
            if address and ep.address and address.split("/")[0] != ep.ip:
                raise Conflict(f"interface {ifname} has address {ep.address}, the runtime expects {address}")
            if ctl.kernel.link_index(netns, ifname) is None:
                raise NotFound(f"interface {ifname} is missing from netns {netns}")
            return {}

    def gc(self, network: str, valid: list[tuple[str, str]]) -> dict[str, Any]:
        """GC (CNI 1.1): every CNI attachment on ``network`` that the runtime no longer lists goes."""
        ctl, keep, removed = self.ctl, set(valid), []
        with ctl.lock:
            try:
                net = ctl.network(network)
            except NotFound:
                return {"removed": []}
            for ep in ctl.endpoints(net):
                sandbox = ctl.sandbox(ep.sandbox_id)
                if sandbox is None or not sandbox.external or (sandbox.id, ep.ifname) in keep:
                    continue
                self.delete(sandbox.id, ep.ifname)
                removed.append({"containerID": sandbox.id, "ifname": ep.ifname})
        return {"removed": removed}

    def status(self, network: str) -> dict[str, Any]:
        """STATUS (CNI 1.1): ready when the network exists (its driver is loaded)."""
        net = self.ctl.network(network)
        return {"network": net.name, "driver": net.driver}
