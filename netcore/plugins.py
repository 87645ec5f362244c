"""Building the plugin manager and calling one driver's hooks.

Built-in drivers and third-party ones take the same path: entry points in the
``netcore.drivers`` group, registered under their entry-point name, which is the
driver name users pass to ``network create -d``. An entry point names a class (a
factory), built once per plugin manager, so two controllers in one process share
no driver state; one naming an already-built object is registered as it is.
"""

from __future__ import annotations

import importlib.metadata
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
    essential: Iterable[str] = (),
) -> pluggy.PluginManager:
    """A validated manager: explicit plugins, then entry points, then ``check_pending``.

    ``NETCORE_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point loading off, except for
    the ``essential`` names (what the engine cannot run without: the runtime names
    the drivers of its predefined networks); ``NETCORE_TRACE_HOOKS=1`` logs every hook call
    (``netcore.hooktrace``).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    try:
        for name, plugin in plugins:
            pm.register(plugin, name=name)
        if autoload and not os.environ.get("NETCORE_DISABLE_PLUGIN_AUTOLOAD"):
            _load_entry_points(pm)
        elif essential:
            _load_entry_points(pm, frozenset(essential))
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


def _load_entry_points(pm: pluggy.PluginManager, only: frozenset[str] | None = None) -> None:
    """pluggy's ``load_setuptools_entrypoints``, but an entry point naming a class is built:
    each manager gets its own driver instances."""
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (only is not None and ep.name not in only):
                continue
            if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            loaded = ep.load()
            plugin = loaded() if isinstance(loaded, type) else loaded
            pm.register(plugin, name=ep.name)
            pm._plugin_distinfo.append((plugin, dist))  # as pluggy's loader does: list_plugin_distinfo() stays true


class Hooks:
    """Typed access to the hooks: one driver's callers, or the broadcast observers."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._subsets: dict[str, Any] = {}
        self._observer_callers: dict[str, tuple[frozenset[object], list[tuple[str, Any]]]] = {}

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
        return self._relay(name)

    def _relay(self, name: str) -> Any:
        """The hook callers reaching plugin ``name`` only, cached."""
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
        """The hook relay of network driver ``name``: ``hooks.driver(net.driver).join(...)``."""
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
        for name, caller in self._observers(hook):
            try:
                caller(**kwargs)
            except Exception:
                log.exception("plugin %s failed in %s", name, hook)

    def _observers(self, hook: str) -> list[tuple[str, Any]]:
        """One pluggy caller per plugin implementing ``hook`` (so tracing and wrappers apply,
        and one failure stops no other), in pluggy's LIFO order; cached until a plugin comes or goes."""
        plugins = frozenset(self.pm.get_plugins())
        cached = self._observer_callers.get(hook)
        if cached is None or cached[0] != plugins:
            impls = reversed(getattr(self.pm.hook, hook).get_hookimpls())
            cached = self._observer_callers[hook] = (plugins, [(i.plugin_name, getattr(self._relay(i.plugin_name), hook)) for i in impls])
        return cached[1]

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
