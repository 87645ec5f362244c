"""The none driver: the sandbox keeps only its loopback. The smallest complete driver,
and the template for a new one."""

from __future__ import annotations

from netcore import DriverInfo, Endpoint, InvalidConfig, JoinInfo, Network, Sandbox, hookimpl

__all__ = ["NoneDriver"]


class NoneDriver:
    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="none", addressing=False)

    @hookimpl
    def create_network(self, network: Network) -> None:
        if network.options:
            raise InvalidConfig(f"unknown none driver option {sorted(network.options)[0]!r} (it takes none)")

    @hookimpl
    def delete_network(self, network: Network) -> None:
        return None

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        return JoinInfo()  # no interface: loopback only

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        return None
