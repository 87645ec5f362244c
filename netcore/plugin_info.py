"""What plugins are loaded, from which distribution, in which version: ``netcore plugins``
and the Plugins section of ``system info``.

A plugin loaded from an entry point names its distribution there; one registered by the
engine itself (the default IPAM, the embedded DNS) or handed over by ``find_plugin`` (a
Docker remote plugin) is attributed to the distribution that ships its module.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PluginInfo", "describe", "as_dicts"]


@dataclass(frozen=True)
class PluginInfo:
    name: str  # the name networks use: -d NAME, --ipam-driver NAME
    kind: str  # "network" or "ipam"
    distribution: str  # the Python distribution that provides it ("" when none is known)
    version: str
    module: str  # where its code lives


@functools.lru_cache(maxsize=1)
def _module_dists() -> dict[str, list[str]]:
    return md.packages_distributions()


def _origin(name: str, plugin: object, loaded: dict[int, Any]) -> tuple[str, str, str]:
    module = type(plugin).__module__ if not hasattr(plugin, "__name__") else plugin.__name__  # an object, or a module
    dist = loaded.get(id(plugin))
    if dist is None:  # registered by hand (an instance made from its entry point's class): the entry point of that name
        from netcore.plugins import ENTRY_POINT_GROUP

        top = module.split(".")[0]
        dist = next((ep.dist for ep in md.entry_points(group=ENTRY_POINT_GROUP)
                     if ep.name == name and ep.module.split(".")[0] == top and ep.dist is not None), None)
    if dist is not None:
        return dist.metadata["name"], dist.version, module
    for name in _module_dists().get(module.split(".")[0], []):
        try:
            return name, md.version(name), module
        except md.PackageNotFoundError:
            continue
    return "", "", module


def describe(pm: Any) -> list[PluginInfo]:
    """Every network and IPAM driver registered in ``pm``, network drivers first, by name."""
    from netcore.plugins import DRIVER_HOOK, IPAM_HOOK

    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distributions()}
    out = []
    for kind, hook in (("network", DRIVER_HOOK), ("ipam", IPAM_HOOK)):
        for impl in sorted(getattr(pm.hook, hook).get_hookimpls(), key=lambda i: i.plugin_name):
            dist, version, module = _origin(impl.plugin_name, impl.plugin, dists)
            out.append(PluginInfo(impl.plugin_name, kind, dist, version, module))
    return out


def as_dicts(infos: list[PluginInfo]) -> list[dict[str, str]]:
    """The API's shape: Docker-style capitalised keys."""
    return [{k.capitalize(): v for k, v in asdict(i).items()} for i in infos]
