"""The host driver: the container shares the host's network namespace.

The core gives a sandbox on a host network no namespace of its own
(``sandbox.netns_path`` is None), so there is nothing for the driver to build.
"""

from __future__ import annotations

from netcore import DriverInfo, Endpoint, InvalidConfig, JoinInfo, Network, Sandbox, hookimpl

__all__ = ["HostDriver"]


class HostDriver:
    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="host", addressing=False, host_namespace=True)

    @hookimpl
    def create_network(self, network: Network) -> None:
        if network.options:
            raise InvalidConfig(f"unknown host driver option {sorted(network.options)[0]!r} (it takes none)")

    @hookimpl
    def delete_network(self, network: Network) -> None:
        return None

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        return JoinInfo()

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        return None
