"""The ``remote`` driver: Docker's network and IPAM plugins, used by netcore.

Nothing loads at engine start. When a network names a driver or IPAM driver that
is not loaded (``network create -d NAME`` / ``--ipam-driver NAME``), the core asks
the ``find_plugin`` hook; this plugin looks ``NAME`` up as Docker does
(``discovery.py``), activates it (``Plugin.Activate``, then ``GetCapabilities`` /
``GetDefaultAddressSpaces``) and hands back a proxy that the core registers under
``NAME``: a network driver (``driver.py``), an IPAM driver (``ipam.py``) or both,
as the plugin's manifest says. Every call is bounded in time (``client.py``).
"""

from __future__ import annotations

from typing import Any

from netcore import PluginError, hookimpl

from drivers.remote.client import PluginClient
from drivers.remote.discovery import locate
from drivers.remote.driver import RemoteDriver
from drivers.remote.ipam import RemoteIpam

__all__ = ["RemotePlugins"]

NETWORK, IPAM = "NetworkDriver", "IpamDriver"


class _Both(RemoteDriver, RemoteIpam):
    def __init__(self, client: PluginClient, capabilities: dict[str, Any], address_space: str) -> None:
        RemoteDriver.__init__(self, client, capabilities)
        RemoteIpam.__init__(self, client, address_space)


class RemotePlugins:
    """The finder: no driver hooks of its own, only ``find_plugin``."""

    @hookimpl
    def find_plugin(self, name: str, kind: str) -> object | None:
        location = locate(name)
        if location is None:
            return None
        client = PluginClient(location)
        manifest = client.call("Plugin.Activate")
        implements = manifest.get("Implements") or []
        if not isinstance(implements, list):
            raise PluginError(f"plugin {name}: Plugin.Activate: \"Implements\" is not a list")
        wanted = NETWORK if kind == "driver" else IPAM
        if wanted not in implements:
            raise PluginError(f"plugin {name} does not implement {wanted} (it implements: {', '.join(map(str, implements)) or 'nothing'})")
        caps: dict[str, Any] = {}
        space = "LocalDefault"
        if NETWORK in implements:
            caps = client.call("NetworkDriver.GetCapabilities")
        if IPAM in implements:
            try:
                client.call("IpamDriver.GetCapabilities")  # optional, as in libnetwork
            except PluginError:
                pass
            spaces = client.call("IpamDriver.GetDefaultAddressSpaces")
            space = str(spaces.get("LocalDefaultAddressSpace") or space)
        if NETWORK in implements and IPAM in implements:
            return _Both(client, caps, space)
        if NETWORK in implements:
            return RemoteDriver(client, caps)
        return RemoteIpam(client, space)
