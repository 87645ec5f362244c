"""The engine's settings: ``netcore daemon`` flags and the same keys in a JSON file.

Keys follow dockerd's ``daemon.json``: ``dns``, ``cluster-store``,
``cluster-advertise`` and ``cluster-store-opts`` (``discovery.ttl``: seconds an
engine's lease outlives it); netcore's own ``docker-plugins`` and ``docker-plugins-dir``
(serve the drivers to a Docker Engine, ``runtime/dockerplugin``). A key set both by flag and in the file is an error,
as with dockerd. Everything is checked here, before the engine starts.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from netcore import InvalidConfig

__all__ = ["DaemonConfig", "load", "ipv4"]

DEFAULT_TTL = 15
KNOWN = {"dns", "cluster-store", "cluster-advertise", "cluster-store-opts", "docker-plugins", "docker-plugins-dir"}
DOCKER_PLUGINS_DIR = "/run/docker/plugins"


@dataclass(frozen=True)
class DaemonConfig:
    dns: list[str] = field(default_factory=list)
    cluster_store: str | None = None  # etcd://HOST:PORT
    advertise: str | None = None  # this host's address on the underlay (its VTEP)
    ttl: int = DEFAULT_TTL
    docker_plugins: bool = False  # also answer Docker's plugin protocols
    docker_plugins_dir: str = DOCKER_PLUGINS_DIR


def ipv4(value: str, what: str) -> str:
    """A user's IPv4 address (``--dns``), or one clear line naming the flag."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise InvalidConfig(f"invalid IPv4 address {value!r} for {what}") from None


def _advertise(value: str) -> str:
    """``IP`` or ``IP:PORT`` (dockerd's form; the port is not used) or an interface name."""
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    from netcore.osl import addrs as osl_addrs

    addrs = osl_addrs.of_link(host)
    if not addrs:
        raise InvalidConfig(f"invalid --cluster-advertise {value!r}: not an IPv4 address nor an interface with one")
    return addrs[0]


def _store_url(value: str) -> str:
    if not value.startswith("etcd://") or not value[len("etcd://"):].strip("/"):
        raise InvalidConfig(f"invalid --cluster-store {value!r}: expected etcd://HOST:PORT")
    return value


def _ttl(opts: dict[str, str]) -> int:
    unknown = set(opts) - {"discovery.ttl"}
    if unknown:
        raise InvalidConfig(f"unknown --cluster-store-opt {sorted(unknown)[0]!r} (known: discovery.ttl)")
    raw = opts.get("discovery.ttl", str(DEFAULT_TTL))
    if not str(raw).isdigit() or not 2 <= int(raw) <= 3600:
        raise InvalidConfig(f"invalid discovery.ttl {raw!r}: seconds between 2 and 3600")
    return int(raw)


def load(path: str | None, flags: dict[str, Any]) -> DaemonConfig:
    """Merge the file at ``path`` (if any) with the flags given (None or empty: not given)."""
    given = {k: v for k, v in flags.items() if v not in (None, (), [], {})}
    from_file: dict[str, Any] = {}
    if path:
        try:
            with open(path) as f:
                from_file = json.load(f)
        except OSError as exc:
            raise InvalidConfig(f"cannot read config file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise InvalidConfig(f"config file {path} is not valid JSON: {exc}") from None
        if not isinstance(from_file, dict):
            raise InvalidConfig(f"config file {path} must hold a JSON object")
        unknown = set(from_file) - KNOWN
        if unknown:
            raise InvalidConfig(f"unknown key {sorted(unknown)[0]!r} in config file {path} (known: {', '.join(sorted(KNOWN))})")
        both = sorted(set(from_file) & set(given))
        if both:
            raise InvalidConfig(f"the following directives are specified both as a flag and in the configuration file: {', '.join(both)}")
    merged = {**from_file, **given}
    opts = merged.get("cluster-store-opts") or {}
    if isinstance(opts, (list, tuple)):
        opts = dict(o.split("=", 1) if "=" in o else (o, "") for o in opts)
    store = _store_url(merged["cluster-store"]) if merged.get("cluster-store") else None
    advertise = _advertise(merged["cluster-advertise"]) if merged.get("cluster-advertise") else None
    if bool(store) != bool(advertise):
        raise InvalidConfig("--cluster-store and --cluster-advertise go together")
    return DaemonConfig(
        dns=[ipv4(s, "--dns") for s in merged.get("dns") or []],
        cluster_store=store,
        advertise=advertise,
        ttl=_ttl(opts),
        docker_plugins=_docker_plugins(merged),
        docker_plugins_dir=_plugins_dir(merged),
    )


def _docker_plugins(merged: dict[str, Any]) -> bool:
    value = merged.get("docker-plugins", False)
    if not isinstance(value, bool):
        raise InvalidConfig(f"invalid docker-plugins {value!r}: expected true or false")
    if merged.get("docker-plugins-dir") and not value:
        raise InvalidConfig("--docker-plugins-dir needs --docker-plugins")
    return value


def _plugins_dir(merged: dict[str, Any]) -> str:
    value = merged.get("docker-plugins-dir") or DOCKER_PLUGINS_DIR
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidConfig(f"invalid docker-plugins-dir {value!r}: expected an absolute path")
    return value
