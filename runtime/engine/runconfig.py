"""The engine's side of Docker's run flags that are not about networks or mounts:
``--add-host``, ``--dns-search``, ``--dns-option``, ``--mac-address``, ``--init``,
``--stop-signal``, ``--stop-timeout``, ``-m``, ``--cpus``.

``record`` checks a create request's values and gives the container record's fields;
``hosts_entries`` and ``init_binary`` are what a start needs from them. The request
was parsed by the client already (``runtime.runopts``): everything is checked again
here, since the API is the contract.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

from netcore import InvalidConfig

from runtime.engine import cgroups
from runtime.engine.restart import parse_signal

__all__ = ["record", "hosts_entries", "init_binary", "INIT_PATHS", "stop_signal", "stop_timeout", "DEFAULT_STOP_TIMEOUT"]

DEFAULT_STOP_TIMEOUT = 10
# static builds only: the init runs inside any image (Docker's docker-init is tini)
INIT_PATHS = ("/usr/bin/tini-static", "/usr/libexec/podman/catatonit", "/usr/bin/catatonit")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidConfig(f"{key} must be a list of strings")
    return list(value)


def record(body: dict[str, Any], image_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A create request's fields (Docker's names) -> the record's, checked; the image's
    STOPSIGNAL is the default stop signal."""
    extra = []
    for entry in _strings(body, "ExtraHosts"):
        name, sep, ip = entry.partition(":")
        if not name or not sep or not ip:
            raise InvalidConfig(f"invalid extra host {entry!r}: expected HOST:IP")
        if ip != "host-gateway":
            try:
                ip = str(ipaddress.ip_address(ip.strip("[]")))
            except ValueError:
                raise InvalidConfig(f"invalid IP address in add-host: {ip!r}") from None
        extra.append(f"{name}:{ip}")
    for opt in _strings(body, "DnsSearch") + _strings(body, "DnsOptions"):
        if not opt or any(c.isspace() for c in opt):
            raise InvalidConfig(f"invalid DNS search domain or option {opt!r}")
    mac = body.get("MacAddress") or None
    if mac is not None and (not isinstance(mac, str) or not _MAC.match(mac.lower()) or int(mac[:2], 16) & 1):
        raise InvalidConfig(f"{mac} is not a valid mac address")
    signal_name = body.get("StopSignal") or (image_config or {}).get("StopSignal") or None
    if signal_name is not None:
        parse_signal(signal_name)  # Docker's "Invalid signal: X"
    timeout = body.get("StopTimeout")
    if timeout is not None and (not isinstance(timeout, int) or timeout < -1):
        raise InvalidConfig(f"invalid StopTimeout {timeout!r}")
    memory, cpus = body.get("Memory") or None, body.get("NanoCpus") or None
    for key, value in (("Memory", memory), ("NanoCpus", cpus)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise InvalidConfig(f"invalid {key} {value!r}")
    if memory is not None and memory < 6 * (1 << 20):
        raise InvalidConfig("Minimum memory limit allowed is 6MB")
    if cpus is not None and cpus > (os.cpu_count() or 1) * 1_000_000_000:
        raise InvalidConfig(f"range of CPUs is from 0.01 to {os.cpu_count() or 1}.00, as there are only {os.cpu_count() or 1} CPUs available")
    try:
        cgroups.paths("check", memory, cpus)
    except cgroups.Unsupported as exc:
        raise InvalidConfig(str(exc)) from None
    init = bool(body.get("Init"))
    if init and init_binary() is None:
        raise InvalidConfig("--init: no static init found (install tini: " + ", ".join(INIT_PATHS) + ")")
    return {
        "extra_hosts": extra,
        "dns_search": _strings(body, "DnsSearch"),
        "dns_options": _strings(body, "DnsOptions"),
        "mac_address": mac.lower() if mac else None,
        "init": init,
        "stop_signal": signal_name,
        "stop_timeout": timeout,
        "memory": memory,
        "nano_cpus": cpus,
    }


def hosts_entries(rec: dict[str, Any], host_gateway: str | None) -> list[tuple[str, str]]:
    """``--add-host`` lines for /etc/hosts as (ip, name); ``host-gateway`` is the default
    bridge's gateway, the host's address that every container can reach."""
    out = []
    for entry in rec.get("extra_hosts") or ():
        name, _, ip = entry.partition(":")
        if ip == "host-gateway":
            if not host_gateway:
                continue
            ip = host_gateway
        out.append((ip, name))
    return out


def init_binary() -> str | None:
    return next((p for p in INIT_PATHS if os.access(p, os.X_OK)), None)


def stop_signal(rec: dict[str, Any]) -> int:
    return parse_signal(rec.get("stop_signal") or "TERM")


def stop_timeout(rec: dict[str, Any], asked: float | None) -> float:
    """``stop -t`` if given, else the container's ``--stop-timeout``, else Docker's 10 s
    (-1: wait for ever)."""
    t = asked if asked is not None else rec.get("stop_timeout")
    if t is None:
        return float(DEFAULT_STOP_TIMEOUT)
    return 1e7 if t < 0 else float(t)
