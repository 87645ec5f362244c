"""The compose model: every key checked, every short form normalised.

A parsed, interpolated document becomes a ``Project`` of ``Service``, ``Network`` and
``Volume`` records. Each key of the file has one parser here; a key with none is
an error that names it by its path (``services.web.imagee``), with a suggestion when
a known key is close. File versions 2.x and 3.x and the Compose Specification (no
``version``) share one set of keys: the differences between them are in keys that
netcore supports for all of them (``depends_on`` conditions) or not at all.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.compose.errors import ComposeError
from runtime.compose.loader import Source, read_env_file

__all__ = ["Project", "Service", "Network", "Volume", "Mount", "Healthcheck", "Build", "from_source", "parse_duration"]

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# keys of docker-compose that netcore does not implement: named as unsupported, not unknown
_UNSUPPORTED = {
    "cap_add", "cap_drop", "cgroup_parent", "configs", "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota",
    "cpus", "cpuset", "deploy", "devices", "dns_opt", "dns_search", "domainname", "extends", "external_links",
    "extra_hosts", "init", "ipc", "isolation", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "memswap_limit", "network_mode", "oom_score_adj", "pid", "platform", "privileged", "profiles", "pull_policy",
    "read_only", "scale", "secrets", "security_opt", "shm_size", "stdin_open", "stop_signal", "sysctls", "tmpfs",
    "tty", "ulimits", "user", "userns_mode", "volumes_from",
}


# ------------------------------------------------------------------ records ----


@dataclass(frozen=True)
class Build:
    context: str  # absolute
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Healthcheck:
    """Docker's healthcheck: ``test`` in the API's form (``["CMD", ...]`` / ``["CMD-SHELL", "..."]``)."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0

    def api(self) -> dict[str, Any]:
        """The engine API's ``Healthcheck`` (durations in nanoseconds, as Docker's)."""
        ns = lambda s: int(round(s * 1e9))  # noqa: E731
        return {"Test": list(self.test), "Interval": ns(self.interval), "Timeout": ns(self.timeout),
                "Retries": self.retries, "StartPeriod": ns(self.start_period)}


@dataclass(frozen=True)
class Mount:
    """A service volume: ``bind`` (source an absolute host path), ``volume`` (a named volume of the
    file, or anonymous when ``source`` is None)."""

    type: str
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    priority: int = 0


@dataclass
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    ports: list[tuple[dict[str, Any], dict[str, list[dict[str, str]]]]] = field(default_factory=list)
    expose: dict[str, Any] = field(default_factory=dict)
    volumes: list[Mount] = field(default_factory=list)
    networks: dict[str, ServiceNetwork] = field(default_factory=dict)
    depends_on: dict[str, str] = field(default_factory=dict)  # service -> condition
    healthcheck: Healthcheck | None = None
    restart: str = "no"
    container_name: str | None = None
    hostname: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    dns: list[str] = field(default_factory=list)
    stop_grace_period: float = 10.0
    raw: dict[str, Any] = field(default_factory=dict)  # the service as written (interpolated), for ``config``


@dataclass
class Network:
    key: str  # its key in the file
    name: str  # on the engine
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    internal: bool = False
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Volume:
    key: str
    name: str
    driver: str | None = None
    driver_opts: dict[str, str] = field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Project:
    name: str
    directory: str
    services: dict[str, Service]
    networks: dict[str, Network]
    volumes: dict[str, Volume]
    version: str | None = None

    def order(self, only: list[str] | None = None) -> list[Service]:
        """Services in start order (dependencies first); ``only``: those and what they depend on."""
        seen: dict[str, None] = {}

        def visit(name: str) -> None:
            if name not in seen:
                for dep in self.services[name].depends_on:
                    visit(dep)
                seen[name] = None

        for name in only or sorted(self.services):
            visit(name)
        return [self.services[n] for n in seen]

    def used_networks(self, services: list[Service] | None = None) -> list[Network]:
        keys = {k for s in services or self.services.values() for k in s.networks}
        return [n for k, n in self.networks.items() if k in keys]


# ------------------------------------------------------------------ helpers ----


def _fail(path: str, message: str) -> ComposeError:
    return ComposeError(f"{path}: {message}")


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _want(path: str, value: Any, *types: type) -> Any:
    if isinstance(value, bool) and bool not in types:
        raise _fail(path, f"expected {' or '.join(_type_name(t()) for t in types)}, got {_type_name(value)}")
    if not isinstance(value, types):
        raise _fail(path, f"expected {' or '.join(_type_name(t()) for t in types)}, got {_type_name(value)}")
    return value


def _string(path: str, value: Any) -> str:
    return _want(path, value, str)


def _scalar(path: str, value: Any) -> str:
    """A value that compose turns into a string (environment, labels, args)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _fail(path, f"expected a string or a number, got {_type_name(value)}")


def _unknown(path: str, key: Any, known: dict[str, Any] | set[str] | tuple[str, ...]) -> ComposeError:
    where = f"{path}.{key}" if path else str(key)
    if path.startswith("services.") and path.count(".") == 1 and key in _UNSUPPORTED:
        return ComposeError(f"{where}: not supported by netcore compose")
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ComposeError(f"{where}: unknown key{hint}")


def _check_keys(path: str, value: dict[str, Any], known: dict[str, Any] | set[str] | tuple[str, ...]) -> None:
    for key in value:
        if key not in known and not (isinstance(key, str) and key.startswith("x-")):
            raise _unknown(path, key, known)


def _mapping(path: str, value: Any) -> dict[str, str]:
    """``[K=V, ...]`` or ``{K: V}`` (labels, build args, driver options) as a dict of strings."""
    if value is None:
        return {}
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            key, sep, val = _string(f"{path}[{i}]", item).partition("=")
            out[key] = val
        return out
    _want(path, value, dict)
    return {str(k): "" if v is None else _scalar(f"{path}.{k}", v) for k, v in value.items()}


def _strings(path: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    _want(path, value, list)
    return [_string(f"{path}[{i}]", v) for i, v in enumerate(value)]


def _argv(path: str, value: Any) -> list[str] | None:
    """``command``/``entrypoint``: a string split like a shell would, or a list taken as is."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise _fail(path, f"cannot split {value!r}: {exc}") from None
    _want(path, value, list)
    return [_scalar(f"{path}[{i}]", v) for i, v in enumerate(value)]


def parse_duration(path: str, value: Any) -> float:
    """Seconds from compose's Go-style durations (``1m30s``, ``500ms``) or a plain number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = _string(path, value).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise _fail(path, f"invalid duration {text!r} (examples: 10s, 1m30s, 500ms)")
    return total


def _bool(path: str, value: Any) -> bool:
    return _want(path, value, bool)


# ------------------------------------------------------------------ services ----


def _build(path: str, value: Any, pdir: str) -> Build:
    if isinstance(value, str):
        value = {"context": value}
    _want(path, value, dict)
    _check_keys(path, value, ("context", "dockerfile", "args", "target", "labels"))
    context = _string(f"{path}.context", value.get("context", "."))
    return Build(
        context=os.path.normpath(os.path.join(pdir, os.path.expanduser(context))),
        dockerfile=_string(f"{path}.dockerfile", value.get("dockerfile", "Dockerfile")),
        args=_mapping(f"{path}.args", value.get("args")),
        target=_string(f"{path}.target", value["target"]) if value.get("target") is not None else None,
        labels=_mapping(f"{path}.labels", value.get("labels")),
    )


def _environment(path: str, value: Any, env: dict[str, str]) -> dict[str, str]:
    """A list ``[K=V, K]`` or a mapping; a bare ``K`` (or ``K:`` null) takes the value from the
    shell environment, and is left out when that has none, as docker-compose does."""
    if value is None:
        return {}
    out: dict[str, str] = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            key, sep, val = _string(f"{path}[{i}]", item).partition("=")
            if sep:
                out[key] = val
            elif key in env:
                out[key] = env[key]
        return out
    _want(path, value, dict)
    for key, val in value.items():
        if val is None:
            if key in env:
                out[str(key)] = env[key]
        else:
            out[str(key)] = _scalar(f"{path}.{key}", val)
    return out


def _ports(path: str, value: Any) -> list[tuple[dict[str, Any], dict[str, list[dict[str, str]]]]]:
    from runtime import portspec

    out = []
    for i, item in enumerate(_want(path, value, list)):
        where = f"{path}[{i}]"
        if isinstance(item, dict):
            _check_keys(where, item, ("target", "published", "protocol", "host_ip", "mode", "name", "app_protocol"))
            if "target" not in item:
                raise _fail(where, "a port needs a target")
            spec = str(_scalar(f"{where}.target", item["target"]))
            if item.get("published") not in (None, ""):
                spec = f"{_scalar(f'{where}.published', item['published'])}:{spec}"
                if item.get("host_ip"):
                    spec = f"{_string(f'{where}.host_ip', item['host_ip'])}:{spec}"
            elif item.get("host_ip"):
                spec = f"{item['host_ip']}::{spec}"
            if item.get("protocol"):
                spec += "/" + _string(f"{where}.protocol", item["protocol"])
        else:
            spec = _scalar(where, item)
        try:
            exposed, bindings = portspec.parse_publish(spec)
        except portspec.PortSpecError as exc:
            raise _fail(where, str(exc)) from None
        out.append((exposed, bindings))
    return out


def _expose(path: str, value: Any) -> dict[str, Any]:
    from runtime import portspec

    out: dict[str, Any] = {}
    for i, item in enumerate(_want(path, value, list)):
        try:
            out.update(portspec.parse_expose(_scalar(f"{path}[{i}]", item)))
        except portspec.PortSpecError as exc:
            raise _fail(f"{path}[{i}]", str(exc)) from None
    return out


def _is_path(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _volumes(path: str, value: Any, pdir: str, declared: dict[str, Any]) -> list[Mount]:
    out = []
    for i, item in enumerate(_want(path, value, list)):
        where = f"{path}[{i}]"
        if isinstance(item, dict):
            _check_keys(where, item, ("type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"))
            kind = _string(f"{where}.type", item.get("type", "volume"))
            if kind not in ("bind", "volume"):
                raise _fail(f"{where}.type", f"unsupported mount type {kind!r} (supported: bind, volume)")
            if "target" not in item:
                raise _fail(where, "a volume needs a target")
            target = _string(f"{where}.target", item["target"])
            source = _string(f"{where}.source", item["source"]) if item.get("source") is not None else None
            read_only = _bool(f"{where}.read_only", item.get("read_only", False))
        else:
            parts = _string(where, item).split(":")
            if len(parts) > 3:
                raise _fail(where, f"invalid volume specification {item!r}")
            mode = parts[2] if len(parts) == 3 else "rw"
            if mode not in ("rw", "ro"):
                raise _fail(where, f"invalid volume mode {mode!r} (rw or ro)")
            source, target = (parts[0], parts[1]) if len(parts) >= 2 else (None, parts[0])
            kind = "bind" if source is not None and _is_path(source) else "volume"
            read_only = mode == "ro"
        if not target.startswith("/"):
            raise _fail(where, f"the container path {target!r} must be absolute")
        if kind == "bind":
            if not source:
                raise _fail(where, "a bind mount needs a source")
            source = os.path.normpath(os.path.join(pdir, os.path.expanduser(source)))
        elif source is not None and source not in declared:
            raise _fail(where, f'named volume "{source}" is used but not declared in the top-level volumes')
        out.append(Mount(type=kind, target=target, source=source, read_only=read_only))
    return out


def _service_networks(path: str, value: Any, declared: dict[str, Any]) -> dict[str, ServiceNetwork]:
    if value is None:
        return {"default": ServiceNetwork()}
    out: dict[str, ServiceNetwork] = {}
    if isinstance(value, list):
        value = {_string(f"{path}[{i}]", v): None for i, v in enumerate(value)}
    _want(path, value, dict)
    for key, cfg in value.items():
        where = f"{path}.{key}"
        if key not in declared and key != "default":
            raise _fail(path, f'undefined network "{key}": declare it in the top-level networks')
        if cfg is None:
            out[key] = ServiceNetwork()
            continue
        _want(where, cfg, dict)
        _check_keys(where, cfg, ("aliases", "ipv4_address", "priority", "gw_priority"))
        ip = cfg.get("ipv4_address")
        if ip is not None:
            try:
                ip = str(ipaddress.IPv4Address(_string(f"{where}.ipv4_address", ip)))
            except ValueError:
                raise _fail(f"{where}.ipv4_address", f"invalid IPv4 address {ip!r}") from None
        prio = cfg.get("gw_priority", cfg.get("priority", 0))
        out[key] = ServiceNetwork(
            aliases=tuple(_strings(f"{where}.aliases", cfg.get("aliases") or [])),
            ipv4_address=ip,
            priority=_want(f"{where}.priority", prio, int),
        )
    return out


def _depends_on(path: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {_string(f"{path}[{i}]", v): "service_started" for i, v in enumerate(value)}
    _want(path, value, dict)
    out = {}
    for key, cfg in value.items():
        where = f"{path}.{key}"
        cfg = _want(where, cfg if cfg is not None else {}, dict)
        _check_keys(where, cfg, ("condition", "restart", "required"))
        cond = _string(f"{where}.condition", cfg.get("condition", "service_started"))
        if cond not in CONDITIONS:
            raise _fail(f"{where}.condition", f"unknown condition {cond!r} (known: {', '.join(CONDITIONS)})")
        out[str(key)] = cond
    return out


def _healthcheck(path: str, value: Any) -> Healthcheck | None:
    _want(path, value, dict)
    _check_keys(path, value, ("test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"))
    if value.get("disable") is True:
        return None
    test = value.get("test")
    if test is None:
        raise _fail(path, "a healthcheck needs a test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    test = _strings(f"{path}.test", test)
    if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise _fail(f"{path}.test", 'a list test starts with "CMD", "CMD-SHELL" or "NONE"')
    if test[0] == "NONE":
        return None
    if len(test) < 2:
        raise _fail(f"{path}.test", "the test has no command")
    retries = _want(f"{path}.retries", value.get("retries", 3), int)
    if retries < 1:
        raise _fail(f"{path}.retries", "must be at least 1")
    return Healthcheck(
        test=tuple(test),
        interval=parse_duration(f"{path}.interval", value.get("interval", "30s")),
        timeout=parse_duration(f"{path}.timeout", value.get("timeout", "30s")),
        retries=retries,
        start_period=parse_duration(f"{path}.start_period", value.get("start_period", "0s")),
    )


def _restart(path: str, value: Any) -> str:
    if value is False:  # YAML 1.1 reads a bare ``no`` as false
        return "no"
    text = _string(path, value)
    policy, _, count = text.partition(":")
    if policy not in ("no", "always", "on-failure", "unless-stopped") or (count and (policy != "on-failure" or not count.isdigit())):
        raise _fail(path, f"invalid restart policy {text!r} (no, always, on-failure[:N], unless-stopped)")
    return text


def _service(name: str, value: Any, ctx: "_Context") -> Service:
    path = f"services.{name}"
    if not _SERVICE_NAME.fullmatch(name):
        raise _fail(path, "invalid service name: only [a-zA-Z0-9._-] are allowed")
    _want(path, value, dict)
    _check_keys(path, value, _SERVICE_KEYS)
    svc = Service(name=name, raw=value)
    env_files: dict[str, str] = {}
    for key, val in value.items():
        if isinstance(key, str) and key.startswith("x-"):
            continue
        where = f"{path}.{key}"
        if key == "env_file":
            for f in _strings(where, val):
                fpath = os.path.join(ctx.pdir, f)
                if not os.path.isfile(fpath):
                    raise _fail(where, f"env file {fpath} not found")
                env_files.update(read_env_file(fpath))
        else:
            _SERVICE_KEYS[key](svc, where, val, ctx)
    svc.environment = {**env_files, **svc.environment}
    if svc.image is None and svc.build is None:
        raise _fail(path, "has neither an image nor a build context specified: at least one must be provided")
    if svc.container_name is not None:
        from netcore import names

        if not names.valid_object_name(svc.container_name):
            raise _fail(f"{path}.container_name", f"invalid container name {svc.container_name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    if not svc.networks:
        svc.networks = {"default": ServiceNetwork()}
    return svc


def _set(attr: str, parse: Callable[[str, Any], Any]) -> Callable[[Service, str, Any, "_Context"], None]:
    return lambda svc, where, val, ctx: setattr(svc, attr, parse(where, val))


_SERVICE_KEYS: dict[str, Callable[[Service, str, Any, "_Context"], None]] = {
    "image": _set("image", _string),
    "build": lambda s, w, v, c: setattr(s, "build", _build(w, v, c.pdir)),
    "command": _set("command", _argv),
    "entrypoint": _set("entrypoint", _argv),
    "environment": lambda s, w, v, c: setattr(s, "environment", _environment(w, v, c.env)),
    "env_file": lambda s, w, v, c: None,  # read in _service: environment overrides it
    "ports": _set("ports", _ports),
    "expose": _set("expose", _expose),
    "volumes": lambda s, w, v, c: setattr(s, "volumes", _volumes(w, v, c.pdir, c.volumes)),
    "networks": lambda s, w, v, c: setattr(s, "networks", _service_networks(w, v, c.networks)),
    "depends_on": _set("depends_on", _depends_on),
    "healthcheck": _set("healthcheck", _healthcheck),
    "restart": _set("restart", _restart),
    "container_name": _set("container_name", _string),
    "hostname": _set("hostname", _string),
    "labels": _set("labels", _mapping),
    "working_dir": _set("working_dir", _string),
    "dns": _set("dns", _strings),
    "stop_grace_period": _set("stop_grace_period", parse_duration),
}


# ------------------------------------------------------------------ top level ----


@dataclass
class _Context:
    pdir: str
    env: dict[str, str]
    networks: dict[str, Any]
    volumes: dict[str, Any]


def _external(path: str, cfg: dict[str, Any], key: str) -> tuple[bool, str | None]:
    """``external: true`` or the old ``external: {name: X}``; (is external, its name if given)."""
    ext = cfg.get("external", False)
    if isinstance(ext, dict):
        _check_keys(f"{path}.external", ext, ("name",))
        return True, _string(f"{path}.external.name", ext["name"]) if "name" in ext else None
    return _bool(f"{path}.external", ext), None


def _network(key: str, cfg: Any, project: str) -> Network:
    path = f"networks.{key}"
    cfg = _want(path, cfg if cfg is not None else {}, dict)
    _check_keys(path, cfg, ("driver", "driver_opts", "ipam", "internal", "external", "name", "labels", "attachable", "enable_ipv6"))
    external, ext_name = _external(path, cfg, key)
    name = ext_name or (_string(f"{path}.name", cfg["name"]) if "name" in cfg else None)
    if cfg.get("enable_ipv6"):
        raise _fail(f"{path}.enable_ipv6", "IPv6 networks are not supported by netcore")
    net = Network(
        key=key,
        name=name or (key if external else f"{project}_{key}"),
        driver=_string(f"{path}.driver", cfg["driver"]) if cfg.get("driver") is not None else None,
        driver_opts=_mapping(f"{path}.driver_opts", cfg.get("driver_opts")),
        internal=_bool(f"{path}.internal", cfg.get("internal", False)),
        external=external,
        labels=_mapping(f"{path}.labels", cfg.get("labels")),
    )
    if external and set(cfg) - {"external", "name"}:
        extra = sorted(set(cfg) - {"external", "name"})[0]
        raise _fail(f"{path}.{extra}", "an external network is configured outside compose: only name is allowed")
    ipam = cfg.get("ipam")
    if ipam is not None:
        _want(f"{path}.ipam", ipam, dict)
        _check_keys(f"{path}.ipam", ipam, ("driver", "config", "options"))
        if ipam.get("driver") not in (None, "default"):
            raise _fail(f"{path}.ipam.driver", f"unsupported IPAM driver {ipam['driver']!r} (only default)")
        configs = _want(f"{path}.ipam.config", ipam.get("config") or [], list)
        if len(configs) > 1:
            raise _fail(f"{path}.ipam.config", "only one subnet per network is supported")
        for i, c in enumerate(configs):
            where = f"{path}.ipam.config[{i}]"
            _want(where, c, dict)
            _check_keys(where, c, ("subnet", "gateway", "ip_range", "aux_addresses"))
            if c.get("aux_addresses"):
                raise _fail(f"{where}.aux_addresses", "not supported by netcore compose")
            net.subnet = _string(f"{where}.subnet", c["subnet"]) if c.get("subnet") else None
            net.gateway = _string(f"{where}.gateway", c["gateway"]) if c.get("gateway") else None
            net.ip_range = _string(f"{where}.ip_range", c["ip_range"]) if c.get("ip_range") else None
    return net


def _volume(key: str, cfg: Any, project: str) -> Volume:
    path = f"volumes.{key}"
    cfg = _want(path, cfg if cfg is not None else {}, dict)
    _check_keys(path, cfg, ("driver", "driver_opts", "external", "name", "labels"))
    external, ext_name = _external(path, cfg, key)
    name = ext_name or (_string(f"{path}.name", cfg["name"]) if "name" in cfg else None)
    return Volume(
        key=key,
        name=name or (key if external else f"{project}_{key}"),
        driver=_string(f"{path}.driver", cfg["driver"]) if cfg.get("driver") is not None else None,
        driver_opts=_mapping(f"{path}.driver_opts", cfg.get("driver_opts")),
        external=external,
        labels=_mapping(f"{path}.labels", cfg.get("labels")),
    )


def _check_version(value: Any) -> str | None:
    if value is None:
        return None
    text = _scalar("version", value)
    if not re.fullmatch(r"[23](\.\d+)?", text):
        raise _fail("version", f"unsupported compose file version {text!r} (2.x, 3.x, or none for the Compose Specification)")
    return text


def _check_graph(services: dict[str, Service]) -> None:
    """Every ``depends_on`` names a service; no cycle; ``service_healthy`` needs a healthcheck."""
    for svc in services.values():
        for dep, cond in svc.depends_on.items():
            if dep not in services:
                raise _fail(f"services.{svc.name}.depends_on", f'service "{svc.name}" depends on undefined service "{dep}"')
            if cond == "service_healthy" and services[dep].healthcheck is None:
                raise _fail(f"services.{svc.name}.depends_on.{dep}", f'service "{dep}" has no healthcheck to wait for')
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(services[name].depends_on):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise ComposeError(f"dependency cycle between services: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(services):
        if name not in state:
            visit(name)


def from_source(src: Source) -> Project:
    """Validate and normalise a loaded document; the first problem is raised as one line."""
    data = src.data
    _check_keys("", data, ("version", "services", "networks", "volumes", "name"))
    version = _check_version(data.get("version"))
    if "services" not in data:
        raise ComposeError("the file has no services (version 1 files, with services at the top level, are not supported)")
    services_raw = _want("services", data["services"] or {}, dict)
    if not services_raw:
        raise ComposeError("services: no service is defined")
    nets_raw = _want("networks", data.get("networks") or {}, dict)
    vols_raw = _want("volumes", data.get("volumes") or {}, dict)
    networks = {k: _network(k, v, src.project_name) for k, v in nets_raw.items()}
    networks.setdefault("default", Network(key="default", name=f"{src.project_name}_default"))
    volumes = {k: _volume(k, v, src.project_name) for k, v in vols_raw.items()}
    ctx = _Context(pdir=src.project_dir, env=src.env, networks=nets_raw, volumes=vols_raw)
    services = {str(k): _service(str(k), v, ctx) for k, v in services_raw.items()}
    _check_graph(services)
    return Project(name=src.project_name, directory=src.project_dir, services=services,
                   networks=networks, volumes=volumes, version=version)
