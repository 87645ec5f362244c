"""Building the plugin manager and calling one driver's hooks.

Built-in drivers and third-party ones take the same path: entry points in the
``netcore.drivers`` group, registered under their entry-point name, which is the
driver name users pass to ``network create -d``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import pluggy

from netcore import hooktrace, hookspecs
from netcore.errors import NotFound, PluginError

__all__ = ["ENTRY_POINT_GROUP", "make_plugin_manager", "Hooks"]

ENTRY_POINT_GROUP = "netcore.drivers"
log = logging.getLogger("netcore.plugins")

DRIVER_HOOK = "create_network"  # a plugin that implements it is a network driver
IPAM_HOOK = "request_pool"  # a plugin that implements it is an IPAM driver


def make_plugin_manager(
    plugins: Iterable[tuple[str, object]] = (),
    autoload: bool = True,
    blocked: Iterable[str] = (),
) -> pluggy.PluginManager:
    """A validated manager: explicit plugins, then entry points, then ``check_pending``.

    ``NETCORE_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point loading off;
    ``NETCORE_TRACE_HOOKS=1`` logs every hook call (``netcore.hooktrace``).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    try:
        for name, plugin in plugins:
            pm.register(plugin, name=name)
        if autoload and not os.environ.get("NETCORE_DISABLE_PLUGIN_AUTOLOAD"):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r} refused: {exc}") from None
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load a {ENTRY_POINT_GROUP} plugin: {exc}") from None
    traced = hooktrace.wanted(os.environ.get("NETCORE_TRACE_HOOKS"))
    if traced is not None:
        hooktrace.install(pm, traced)
    return pm


class Hooks:
    """Typed access to the hooks: one driver's callers, or the broadcast observers."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._subsets: dict[str, Any] = {}

    def _names_implementing(self, hook: str) -> list[str]:
        caller = getattr(self.pm.hook, hook)
        return sorted(impl.plugin_name for impl in caller.get_hookimpls())

    def drivers(self) -> list[str]:
        """Names of every network driver loaded."""
        return self._names_implementing(DRIVER_HOOK)

    def ipam_drivers(self) -> list[str]:
        return self._names_implementing(IPAM_HOOK)

    def _subset(self, name: str, kind: str, known: list[str]) -> Any:
        if name not in known:
            known = self._find(name, kind, known)
        if name not in known:
            raise NotFound(f"{kind} {name!r} not found (loaded: {', '.join(known) or 'none'})")
        plugins = frozenset(self.pm.get_plugins())
        cached = self._subsets.get(name)
        if cached is None or cached[0] != plugins:  # rebuilt when a plugin came or went
            cached = self._subsets[name] = (plugins, _SubsetRelay(self.pm, name))
        return cached[1]

    def _find(self, name: str, kind: str, known: list[str]) -> list[str]:
        """Ask the ``find_plugin`` hook for a driver not loaded; register what it gives."""
        if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
            return known
        found = self.pm.hook.find_plugin(name=name, kind="ipam" if kind.startswith("IPAM") else "driver")
        if found is None:
            return known
        try:
            self.pm.register(found, name=name)
            self.pm.check_pending()
        except ValueError:  # registered meanwhile by another thread
            pass
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PluginError(f"plugin {name!r} refused: {exc}") from None
        return self.drivers() if kind == "driver" else self.ipam_drivers()

    def driver(self, name: str) -> Any:
        """The hook relay of network driver ``name``: ``hooks.driver("bridge").join(...)``."""
        return self._subset(name, "driver", self.drivers())

    def implements(self, name: str, hook: str) -> bool:
        """Whether plugin ``name`` implements ``hook`` (optional driver hooks)."""
        return name in self._names_implementing(hook)

    def ipam(self, name: str) -> Any:
        return self._subset(name, "IPAM driver", self.ipam_drivers())

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call observer ``hook`` on every plugin that has it.

        Observers run after the operation committed: one that fails is logged and
        neither undoes the operation nor keeps the other observers from hearing of it.
        """
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):  # pluggy's LIFO order
            args = {arg: kwargs[arg] for arg in impl.argnames}
            try:
                hooktrace.trace_call(self.pm, impl.plugin_name, hook, args, lambda: impl.function(**args))
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook)

    def configure(self, context: Any) -> None:
        self.pm.hook.configure.call_historic(kwargs={"context": context})


class _SubsetRelay:
    """Like ``pm.hook`` but only reaching one plugin (built lazily per hook, then cached)."""

    def __init__(self, pm: pluggy.PluginManager, name: str) -> None:
        self._pm = pm
        self._name = name
        self._others = [p for n, p in pm.list_name_plugin() if n != name]

    def __getattr__(self, hook: str) -> Any:
        caller = self._pm.subset_hook_caller(hook, remove_plugins=self._others)
        setattr(self, hook, caller)
        return caller
