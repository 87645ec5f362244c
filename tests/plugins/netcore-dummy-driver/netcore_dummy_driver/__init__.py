"""A third-party netcore driver that makes nothing, registered through the ``netcore.drivers``
entry point as ``dummy``, the way any out-of-tree driver is.

It takes an IPAM pool (``addressing=True``), so its endpoints get addresses, but it
creates no kernel object: a join leaves the sandbox with its loopback only.

If ``NETCORE_DUMMY_LOG`` names a file, every hook call appends one line to it::

    create_network <network name>
    delete_network <network name>
    create_endpoint <network name> <endpoint name>
    delete_endpoint <network name> <endpoint name>
    join <network name> <endpoint name>
    leave <network name> <endpoint name>

so a test can prove that the engine really called this driver. The variable is read
at each call, so it can be set after the driver was loaded.
"""

from __future__ import annotations

import os
import threading

from netcore import DriverInfo, Endpoint, InterfaceInfo, InvalidConfig, JoinInfo, Network, Sandbox, hookimpl

__all__ = ["DummyDriver", "plugin", "LOG_ENV"]

LOG_ENV = "NETCORE_DUMMY_LOG"


class DummyDriver:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _log(self, *words: str) -> None:
        path = os.environ.get(LOG_ENV)
        if not path:
            return
        with self._lock, open(path, "a", encoding="utf-8") as f:
            f.write(" ".join(words) + "\n")

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="dummy", addressing=True)

    @hookimpl
    def create_network(self, network: Network) -> None:
        if network.options:
            raise InvalidConfig(f"unknown dummy driver option {sorted(network.options)[0]!r} (it takes none)")
        self._log("create_network", network.name)

    @hookimpl
    def delete_network(self, network: Network) -> None:
        self._log("delete_network", network.name)

    @hookimpl
    def create_endpoint(self, network: Network, endpoint: Endpoint) -> InterfaceInfo | None:
        self._log("create_endpoint", network.name, endpoint.name)
        return None

    @hookimpl
    def delete_endpoint(self, network: Network, endpoint: Endpoint) -> None:
        self._log("delete_endpoint", network.name, endpoint.name)

    @hookimpl
    def join(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> JoinInfo:
        self._log("join", network.name, endpoint.name)
        return JoinInfo()  # no interface: the sandbox keeps its loopback only

    @hookimpl
    def leave(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> None:
        self._log("leave", network.name, endpoint.name)


plugin = DummyDriver()
