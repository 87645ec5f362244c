"""Published ports: the host ports (``netcore.ports``) and the driver's forwarding, together.

Host ports are chosen and held here, for every driver alike; the driver only
programs the forwarding. Drivers without ``program_external_connectivity``
(host, none) publish nothing, as Docker discards ports there.
"""

from __future__ import annotations

from netcore.controller.core import Core
from netcore.models import Endpoint, Network, PortBinding, Sandbox
from netcore.steps import Transaction

__all__ = ["Publisher"]


class Publisher:
    def __init__(self, core: Core) -> None:
        self.core = core

    def publish(self, net: Network, ep: Endpoint, sandbox: Sandbox, ports: list[PortBinding], tx: Transaction | None = None) -> None:
        """Publish ``ports`` through ``ep``, the endpoint with the sandbox's default route.

        Without ``tx`` it is a transaction of its own.
        """
        hooks = self.core.hooks
        if not ports or not hooks.implements(net.driver, "program_external_connectivity"):
            return
        if tx is None:
            with Transaction(f"publish ports of {sandbox.name} on {net.name}") as own:
                return self.publish(net, ep, sandbox, ports, own)
        allocator = self.core.ports
        tx.step("endpoint.ports")
        ep.ports = allocator.reserve(ports)
        tx.push("endpoint.ports", lambda: allocator.release(ep.ports))
        drv = hooks.driver(net.driver)
        drv.program_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
        tx.push("endpoint.publish", lambda: drv.revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox))

    def unpublish(self, net: Network, ep: Endpoint, sandbox: Sandbox) -> None:
        if not ep.ports:
            return
        try:
            self.core.hooks.driver(net.driver).revoke_external_connectivity(network=net, endpoint=ep, sandbox=sandbox)
        finally:
            self.core.ports.release(ep.ports)
            ep.ports = []
