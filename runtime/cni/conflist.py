"""The conflist that puts a CNI runtime's containers on a netcore network."""

from __future__ import annotations

TYPE_CHECKING = False  # the CLI imports this: typing costs it ~4 ms (see runtime.api.client)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SUPPORTED", "DEFAULT_VERSION", "PLUGIN_TYPE", "DEFAULT_SOCKET", "conflist"]

# VERSION lists these verbatim (netcore-cni.c's SUPPORTED is the same list): libcni (podman 4.3) drops a network whose conflist version is
# missing from the plugin's list, and knows 1.1.0 only from libcni v1.2 on
SUPPORTED = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
DEFAULT_VERSION = "1.0.0"
PLUGIN_TYPE = "netcore-cni"
DEFAULT_SOCKET = "/run/netcore/netcore.sock"  # = runtime.api.client.DEFAULT_SOCKET, = netcore-cni.c's default


def conflist(network: str, socket: str, version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """One plugin, ``netcore-cni``, naming the network and the engine's socket; the
    ``portMappings`` and ``aliases`` capabilities ask the runtime for ``-p`` and aliases."""
    if version not in SUPPORTED:
        raise ValueError(f"unsupported CNI version {version!r}: one of {', '.join(SUPPORTED)}")
    return {
        "cniVersion": version,
        "name": network,
        "plugins": [{
            "type": PLUGIN_TYPE,
            "network": network,
            "socket": socket,
            "capabilities": {"portMappings": True, "aliases": True},
        }],
    }
