"""CNI's protocol, engine side: what ``netcore-cni`` forwards, judged and answered.

``netcore-cni`` (``runtime/cni/netcore-cni.c``) is a static forwarder: a runtime execs it
per operation with the request in ``CNI_*`` variables and the network configuration on
stdin, e.g. ``{"type": "netcore-cni", "network": "NAME", "socket": "/run/netcore/netcore.sock"}``;
it answers VERSION itself and posts everything else here. This module is the one place of
the plugin's logic: the spec 1.0.0 checks (0.3.x, 0.4.0 and 1.1.0 when the config asks),
CNI's error codes, the result in the requested version's shape. ``handle`` returns the
exit status and what the forwarder prints: the result, nothing, or CNI's error object
(``{"cniVersion","code","msg","details"}``, as libcni's skel prints it).

DEL never fails for lack of anything: no record, no netns, a repeat (and the forwarder
makes DEL succeed when no engine answers: it reaps at its next start).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from netcore import NetcoreError, PortBinding

from runtime.cni.conflist import DEFAULT_VERSION, SUPPORTED

__all__ = ["handle", "CniError"]

log = logging.getLogger("netcore.cni")

# CNI's error codes (SPEC.md "Error codes")
INCOMPATIBLE, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, INVALID_ENV, IO_FAILURE, DECODE, INVALID_CONFIG, TRY_AGAIN = 1, 2, 3, 4, 5, 6, 7, 11
NOT_READY, NOT_AVAILABLE = 50, 51  # STATUS: the engine does not answer / the network is not there
ENGINE_REFUSED = 100  # plugin-specific: the engine refused (details: its message)


KNOWN_ARGS = ("IgnoreUnknown", "IP", "K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID")
"""The ``CNI_ARGS`` keys netcore-cni takes: ``IP`` and the pod name are used, the other
Kubernetes keys (which kubelets and podman send) are accepted and unused."""


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def handle(env: dict[str, str], raw: str, cni: Any) -> tuple[int, dict[str, Any] | None]:
    """One forwarded call: (exit status, what to print or None). ``cni``: the engine's
    ``CniAttachments``."""
    version = DEFAULT_VERSION
    try:
        command = env.get("CNI_COMMAND", "")
        conf = _decode(raw)
        version = conf.get("cniVersion") if isinstance(conf.get("cniVersion"), str) else version
        if command == "VERSION":
            return 0, {"cniVersion": version, "supportedVersions": list(SUPPORTED)}
        if command not in _COMMANDS:
            raise CniError(INVALID_ENV, f"unknown CNI_COMMAND {command!r}: one of ADD, DEL, CHECK, VERSION, STATUS, GC")
        if version not in SUPPORTED:
            raise CniError(INCOMPATIBLE, f"netcore-cni does not support config version {version!r}",
                           "supported: " + ", ".join(SUPPORTED))
        if not isinstance(conf.get("socket", ""), str):  # the forwarder asked the default engine then
            raise CniError(INVALID_CONFIG, '"socket" must be the path of the netcore engine\'s socket')
        return 0, _COMMANDS[command](_Request(env, conf, version, cni))
    except CniError as exc:
        return 1, {"cniVersion": version, "code": exc.code, "msg": exc.msg, "details": exc.details}
    except Exception as exc:  # one line, never a traceback: the runtime shows msg to its user
        log.exception("netcore-cni %s", env.get("CNI_COMMAND", ""))
        return 1, {"cniVersion": version, "code": IO_FAILURE, "msg": f"netcore-cni: {exc}", "details": type(exc).__name__}


def _decode(raw: str) -> dict[str, Any]:
    try:
        conf = json.loads(raw or "{}")
    except (ValueError, RecursionError) as exc:
        raise CniError(DECODE, f"the network configuration is not JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise CniError(DECODE, "the network configuration is not a JSON object")
    return conf


class _Request:
    """The CNI_* environment and the configuration of one call."""

    def __init__(self, env: dict[str, str], conf: dict[str, Any], version: str, cni: Any) -> None:
        self.env, self.conf, self.version, self.cni = env, conf, version, cni

    def var(self, name: str) -> str:
        value = self.env.get(name, "")
        if not value:
            raise CniError(INVALID_ENV, f"{name} is not set")
        return value

    def container(self) -> tuple[str, str]:
        cid, ifname = self.var("CNI_CONTAINERID"), self.var("CNI_IFNAME")
        if not (cid[0].isalnum() and all(c.isalnum() or c in "_.-" for c in cid)) or len(cid) > 255:
            raise CniError(INVALID_ENV, f"invalid CNI_CONTAINERID {cid!r}")
        if len(ifname) > 15 or "/" in ifname or ifname in (".", "..") or any(c.isspace() for c in ifname):
            raise CniError(INVALID_ENV, f"invalid CNI_IFNAME {ifname!r}: at most 15 characters, no '/' or spaces")
        return cid, ifname

    def netns(self) -> str:
        path = self.var("CNI_NETNS")
        if not os.path.exists(path):
            raise CniError(INVALID_ENV, f"CNI_NETNS {path} does not exist")
        return path

    def network(self) -> str:
        net = self.conf.get("network")
        if not isinstance(net, str) or not net:
            raise CniError(INVALID_CONFIG, 'the configuration names no netcore network: add "network": "NAME" to the netcore-cni plugin')
        return net

    def args(self) -> dict[str, str]:
        """``CNI_ARGS``: ``K=V;K=V`` (podman: ``IgnoreUnknown=1;K8S_POD_NAME=<name>``). As libcni's
        ``types.LoadArgs``: a pair without ``=`` is refused, and so is a key netcore-cni does
        not know unless ``IgnoreUnknown`` is true (``1``/``true``)."""
        out = {}
        raw = self.env.get("CNI_ARGS", "")
        for item in raw.split(";") if raw else []:
            key, sep, value = item.partition("=")
            if not sep:
                raise CniError(INVALID_ENV, f"ARGS: invalid pair {item!r}: KEY=VALUE;KEY=VALUE")
            out[key.strip()] = value.strip()
        ignore = out.get("IgnoreUnknown", "")
        if ignore.lower() not in ("", "0", "1", "true", "false"):
            raise CniError(INVALID_ENV, f"ARGS: IgnoreUnknown={ignore!r} is not a boolean")
        unknown = [k for k in out if k not in KNOWN_ARGS]
        if unknown and ignore.lower() not in ("1", "true"):
            raise CniError(INVALID_ENV, f"ARGS: unknown args {unknown!r} (known: {', '.join(KNOWN_ARGS)}; IgnoreUnknown=1 to ignore others)")
        return out

    def runtime_config(self) -> dict[str, Any]:
        rc = self.conf.get("runtimeConfig") or {}
        if not isinstance(rc, dict):
            raise CniError(INVALID_CONFIG, "runtimeConfig must be an object")
        return rc


def _engine(call: Any, not_found: int = INVALID_CONFIG) -> Any:
    """The engine's refusal as CNI's error: 404 ``not_found``, 400 invalid config, else 100."""
    try:
        return call()
    except NetcoreError as exc:
        status = getattr(exc, "status", 500)
        code = not_found if status == 404 else INVALID_CONFIG if status == 400 else ENGINE_REFUSED
        raise CniError(code, " ".join(str(exc).split()), f"netcore engine: HTTP {status}") from None


def _aliases(req: _Request, network: str) -> list[str]:
    """The ``aliases`` capability: ``{"<network name>": ["a", "b"]}``."""
    aliases = req.runtime_config().get("aliases") or {}
    names = aliases.get(req.conf.get("name"), aliases.get(network, [])) if isinstance(aliases, dict) else []
    return [a for a in names if isinstance(a, str) and a] if isinstance(names, list) else []


def _static_ip(req: _Request, args: dict[str, str]) -> str | None:
    """``IP=`` in CNI_ARGS, or the first address of the ``ips`` capability / ``args.cni.ips``."""
    cni_args = req.conf.get("args") if isinstance(req.conf.get("args"), dict) else {}
    ips = req.runtime_config().get("ips") or (cni_args.get("cni") or {}).get("ips") or []
    ip = args.get("IP") or (ips[0] if isinstance(ips, list) and ips and isinstance(ips[0], str) else "")
    return ip.split("/")[0] or None


def _ports(req: _Request) -> list[PortBinding]:
    """The ``portMappings`` capability."""
    items = req.runtime_config().get("portMappings") or []
    if not isinstance(items, list) or not all(isinstance(p, dict) for p in items):
        raise CniError(INVALID_CONFIG, "runtimeConfig.portMappings must be a list of objects")
    out = []
    for p in items:
        proto = str(p.get("protocol") or "tcp").lower()
        host, cont, host_ip = p.get("hostPort", 0), p.get("containerPort", 0), p.get("hostIP", "") or ""
        ok = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535 for v in (host, cont))
        if not ok or not cont or proto not in ("tcp", "udp", "sctp") or not isinstance(host_ip, str):
            raise CniError(INVALID_CONFIG, f"invalid port mapping {host}:{cont}/{proto}")
        out.append(PortBinding(container_port=cont, proto=proto, host_ip=host_ip, host_port=host))
    return out


# ----------------------------------------------------------------- commands --


def _add(req: _Request) -> dict[str, Any]:
    cid, ifname = req.container()
    network, netns = req.network(), req.netns()
    args = req.args()
    ports, aliases, ip = _ports(req), _aliases(req, network), _static_ip(req, args)
    att = _engine(lambda: req.cni.add(cid, ifname, netns, network, name=args.get("K8S_POD_NAME") or cid,
                                      aliases=aliases, ports=ports, ip=ip))
    return result(att, req.version, req.conf.get("prevResult"))


def result(att: dict[str, Any], version: str, prev: Any) -> dict[str, Any]:
    """The ADD result in ``version``'s shape, after whatever an earlier plugin returned."""
    prev = prev if isinstance(prev, dict) else {}
    interfaces = list(prev.get("interfaces") or [])
    ips = list(prev.get("ips") or [])
    routes = list(prev.get("routes") or [])
    interfaces += att.get("host_interfaces") or []  # as the bridge plugin: bridge, host veth, then the container's
    interfaces.append(att["interface"])
    if att.get("address"):
        ip: dict[str, Any] = {"address": att["address"], "interface": len(interfaces) - 1}
        if att.get("gateway"):
            ip["gateway"] = att["gateway"]
        if not version.startswith("1."):
            ip["version"] = "4"  # dropped from the result by spec 1.0
        ips.append(ip)
    routes += att.get("routes") or []
    out: dict[str, Any] = {"cniVersion": version, "interfaces": interfaces, "ips": ips, "routes": routes}
    dns = att.get("dns") or prev.get("dns")
    if dns:
        out["dns"] = dns
    return out


def _del(req: _Request) -> None:
    cid, ifname = req.container()
    req.network()
    _engine(lambda: req.cni.delete(cid, ifname))
    return None


def _check(req: _Request) -> None:
    if req.version in ("0.3.0", "0.3.1"):
        raise CniError(INCOMPATIBLE, f"config version {req.version} does not allow CHECK (0.4.0 or later)")
    cid, ifname = req.container()
    network, netns = req.network(), req.netns()
    prev = req.conf.get("prevResult")
    if not isinstance(prev, dict):
        raise CniError(INVALID_CONFIG, "CHECK needs the prevResult of the ADD")
    ifaces = prev.get("interfaces") or []
    idx = next((i for i, itf in enumerate(ifaces) if isinstance(itf, dict) and itf.get("name") == ifname and itf.get("sandbox")), None)
    address = next((ip.get("address", "") for ip in prev.get("ips") or [] if isinstance(ip, dict) and ip.get("interface") == idx), "")
    _engine(lambda: req.cni.check(cid, ifname, netns, network, address=str(address)), not_found=UNKNOWN_CONTAINER)
    return None


def _status(req: _Request) -> None:
    """51 when the network is not there (404), 50 for any other refusal; the forwarder
    answers 50 itself when no engine answers."""
    network = req.network()
    try:
        _engine(lambda: req.cni.status(network), not_found=NOT_AVAILABLE)
    except CniError as exc:
        raise CniError(exc.code if exc.code == NOT_AVAILABLE else NOT_READY, exc.msg, exc.details) from None
    return None


def _gc(req: _Request) -> None:
    network = req.network()
    valid = req.conf.get("cni.dev/valid-attachments") or []
    if not isinstance(valid, list):
        raise CniError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    keep = [(str(v.get("containerID", "")), str(v.get("ifname", ""))) for v in valid if isinstance(v, dict)]
    _engine(lambda: req.cni.gc(network, keep))
    return None


_COMMANDS = {"ADD": _add, "DEL": _del, "CHECK": _check, "STATUS": _status, "GC": _gc}
