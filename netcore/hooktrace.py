"""Hook-call tracing for plugin authors: ``NETCORE_TRACE_HOOKS=1`` (or a comma list of
driver and hook names, e.g. ``macvlan`` or ``join,leave``).

Each hook call that reaches a plugin becomes one line on the ``netcore.hooks`` logger
(the engine's log, its stderr), at INFO whatever ``--log-level`` says::

    hook macvlan.join(network=mvnet/3f2a9c01d4e5, endpoint=web eth0 10.1.0.2/24 02:42:0a:01:00:02, sandbox=web) -> JoinInfo(...) [1.9 ms]
    hook macvlan.create_network(network=bad/0c1d...) raised InvalidConfig: unknown macvlan driver option 'x' [0.1 ms]

Driver and IPAM hooks go to one plugin; broadcast observers (``network_created`` ...)
are traced per plugin too: the core calls each one through its own hook caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["install", "wanted", "summary", "log"]

log = logging.getLogger("netcore.hooks")
_starts = threading.local()


def wanted(setting: str | None) -> frozenset[str] | None:
    """The names the switch selects: None for off, empty for everything."""
    if not setting or setting.strip().lower() in ("0", "false", "no", "off"):
        return None
    if setting.strip().lower() in ("1", "true", "yes", "on", "all"):
        return frozenset()
    return frozenset(n.strip() for n in setting.split(",") if n.strip())


def _short(value: Any, limit: int = 80) -> str:
    from netcore.models import Endpoint, Network, Sandbox

    if isinstance(value, Network):
        return f"{value.name}/{value.id[:12]}"
    if isinstance(value, Endpoint):
        return " ".join(x for x in (value.name, value.ifname, value.address or "", value.mac or "") if x)
    if isinstance(value, Sandbox):
        return value.name or value.id[:12]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary(kwargs: Mapping[str, Any]) -> str:
    """The arguments of a hook call, each in a few words."""
    return ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())


def _selected(names: frozenset[str], hook: str, plugins: Sequence[str]) -> bool:
    return not names or hook in names or any(p in names for p in plugins)


def _line(plugins: Sequence[str], hook: str, kwargs: Mapping[str, Any], outcome: Any, started: float) -> None:
    """One trace line; never fails the hook call it describes (a bad ``repr`` is shown as such)."""
    ms = (time.perf_counter() - started) * 1000
    try:
        text = outcome()
        args = summary(kwargs)
    except Exception as exc:
        text, args = f"(trace failed: {type(exc).__name__})", "..."
    log.info("hook %s.%s(%s) %s [%.1f ms]", ",".join(plugins), hook, args, text, ms)


def _outcome(result: Any = None, exc: BaseException | None = None) -> str:
    if exc is not None:
        return f"raised {type(exc).__name__}: {exc}"
    return f"-> {_short(result, 200)}"


def install(pm: Any, names: frozenset[str]) -> None:
    """Trace every hook call of ``pm`` that reaches a plugin (``names``: only these drivers or hooks)."""
    log.setLevel(logging.INFO)

    def before(hook: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        stack = getattr(_starts, "stack", None)
        if stack is None:
            stack = _starts.stack = []
        stack.append(time.perf_counter())

    def after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        started = _starts.stack.pop()
        plugins = [i.plugin_name for i in impls]
        if not plugins or not _selected(names, hook, plugins):
            return
        _line(plugins, hook, kwargs, lambda: _outcome(outcome.get_result() if outcome.exception is None else None, outcome.exception), started)

    pm.add_hookcall_monitoring(before, after)
