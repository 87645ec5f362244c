"""Finding a Docker plugin by name, by Docker's rules (moby ``pkg/plugins/discovery.go``).

``N`` is looked up, first hit wins: ``<sockets>/N.sock``, ``<sockets>/N/N.sock`` (a
socket), then in each spec dir ``N.spec``, ``N/N.spec``, ``N.json``, ``N/N.json``.
A ``.spec`` holds one URL (``unix:///x.sock`` or ``tcp://host:port``); a ``.json``
holds ``{"Name", "Addr", "TLSConfig": {...}}``. The directories are settings, so
tests point them at temp dirs: ``NETCORE_DOCKER_PLUGIN_SOCKETS`` (default
``/run/docker/plugins``) and ``NETCORE_DOCKER_PLUGIN_SPECS`` (``:``-separated,
default ``/etc/docker/plugins:/usr/lib/docker/plugins``).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from netcore import PluginError

__all__ = ["Location", "locate", "socket_dir", "spec_dirs"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Location:
    """Where a plugin answers: ``unix`` (a socket path) or ``tcp``/``https`` (host, port)."""

    name: str
    scheme: str  # unix, tcp (plain HTTP) or https
    address: str  # socket path, or host:port
    tls: dict[str, Any] = field(default_factory=dict)  # the .json file's TLSConfig


def socket_dir() -> str:
    return os.environ.get("NETCORE_DOCKER_PLUGIN_SOCKETS") or "/run/docker/plugins"


def spec_dirs() -> list[str]:
    raw = os.environ.get("NETCORE_DOCKER_PLUGIN_SPECS") or "/etc/docker/plugins:/usr/lib/docker/plugins"
    return [d for d in raw.split(":") if d]


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _parse_url(name: str, url: str, source: str, tls: dict[str, Any] | None = None) -> Location:
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise PluginError(f"plugin {name}: {source}: Unknown protocol in {url!r}")
    scheme = scheme.lower()
    if scheme == "unix":
        return Location(name, "unix", rest)
    if scheme in ("tcp", "http", "https"):
        hostport = rest.split("/", 1)[0]
        if scheme == "https" or (tls and scheme == "tcp"):
            return Location(name, "https", hostport, dict(tls or {}))
        return Location(name, "tcp", hostport)
    raise PluginError(f"plugin {name}: {source}: Unknown protocol {scheme!r}")


def _read_spec(name: str, path: str) -> Location:
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise PluginError(f"plugin {name}: cannot read {path}: {exc.strerror}") from None
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PluginError(f"plugin {name}: {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("Addr"), str):
            raise PluginError(f"plugin {name}: {path} has no \"Addr\"")
        tls = data.get("TLSConfig") or {}
        if tls and not tls.get("CAFile"):
            tls = {**tls, "InsecureSkipVerify": True}  # Docker's rule: no CA file, no verification
        return _parse_url(name, data["Addr"], path, tls or None)
    return _parse_url(name, text, path)


def locate(name: str) -> Location | None:
    """Where plugin ``name`` answers, or None if no socket or spec file names it."""
    if not _NAME.match(name) or "/" in name:
        return None
    sockets = socket_dir()
    for path in (os.path.join(sockets, f"{name}.sock"), os.path.join(sockets, name, f"{name}.sock")):
        if _is_socket(path):
            return Location(name, "unix", path)
    for d in spec_dirs():
        for rel in (f"{name}.spec", f"{name}/{name}.spec", f"{name}.json", f"{name}/{name}.json"):
            path = os.path.join(d, rel)
            if os.path.isfile(path):
                return _read_spec(name, path)
    return None
