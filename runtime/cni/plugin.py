"""``netcore-cni``: a CNI plugin (spec 1.0.0; 0.3.x, 0.4.0 and 1.1.0 when the config asks).

The runtime execs it per operation with the request in ``CNI_*`` variables and the
network configuration on stdin, e.g. ``{"type": "netcore-cni", "network": "NAME",
"socket": "/run/netcore/netcore.sock"}``. It asks the netcore engine on that socket
(never starting one) to attach ``CNI_NETNS`` to the network, and prints the result in
the requested version's shape. Failures print CNI's error object on stdout
(``{"cniVersion","code","msg","details"}``, as libcni's skel does) and exit 1.

DEL never fails for lack of anything: no record, no netns, a repeat; an engine that
does not answer is logged on stderr and DEL still succeeds (the engine reaps the
sandbox of a deleted netns at its next start, and STATUS/GC exist for the rest).

Exec'd per call, so it imports only ``os``, ``sys`` and ``runtime.cni.wire`` (JSON and
the request through the C halves of ``json`` and ``socket``): no engine code, no
pydantic, no pyroute2, not even ``json`` (see ``wire``).
"""

from __future__ import annotations

import os
import sys

from runtime.cni import wire
from runtime.cni.conflist import DEFAULT_SOCKET, SUPPORTED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main", "CniError"]

# CNI's error codes (SPEC.md "Error codes")
INCOMPATIBLE, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, INVALID_ENV, IO_FAILURE, DECODE, INVALID_CONFIG, TRY_AGAIN = 1, 2, 3, 4, 5, 6, 7, 11
NOT_READY = 50
ENGINE_REFUSED = 100  # plugin-specific: the engine refused (details: its message)


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def main() -> int:
    version = SUPPORTED[-2]
    try:
        command = os.environ.get("CNI_COMMAND", "")
        raw = sys.stdin.buffer.read()
        conf = _decode(raw)
        version = conf.get("cniVersion") if isinstance(conf.get("cniVersion"), str) else version
        if command == "VERSION":
            return _print({"cniVersion": version, "supportedVersions": list(SUPPORTED)})
        if command not in _COMMANDS:
            raise CniError(INVALID_ENV, f"unknown CNI_COMMAND {command!r}: one of ADD, DEL, CHECK, VERSION, STATUS, GC")
        if version not in SUPPORTED:
            raise CniError(INCOMPATIBLE, f"netcore-cni does not support config version {version!r}",
                           "supported: " + ", ".join(SUPPORTED))
        out = _COMMANDS[command](conf, version)
        return _print(out) if out is not None else 0
    except CniError as exc:
        _print({"cniVersion": version, "code": exc.code, "msg": exc.msg, "details": exc.details})
        return 1
    except Exception as exc:  # one line, never a traceback: the runtime shows msg to its user
        _print({"cniVersion": version, "code": IO_FAILURE, "msg": f"netcore-cni: {exc}", "details": type(exc).__name__})
        return 1


def _print(obj: dict[str, Any]) -> int:
    sys.stdout.write(wire.dumps(obj) + "\n")
    sys.stdout.flush()
    return 0


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        conf = wire.loads(raw or b"{}")
    except ValueError as exc:
        raise CniError(DECODE, f"the network configuration is not JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise CniError(DECODE, "the network configuration is not a JSON object")
    return conf


# ------------------------------------------------------------------ request --


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise CniError(INVALID_ENV, f"{name} is not set")
    return value


def _container() -> tuple[str, str]:
    cid, ifname = _env("CNI_CONTAINERID"), _env("CNI_IFNAME")
    if not (cid[0].isalnum() and all(c.isalnum() or c in "_.-" for c in cid)) or len(cid) > 255:
        raise CniError(INVALID_ENV, f"invalid CNI_CONTAINERID {cid!r}")
    if len(ifname) > 15 or "/" in ifname or ifname in (".", "..") or any(c.isspace() for c in ifname):
        raise CniError(INVALID_ENV, f"invalid CNI_IFNAME {ifname!r}: at most 15 characters, no '/' or spaces")
    return cid, ifname


def _netns() -> str:
    path = _env("CNI_NETNS")
    if not os.path.exists(path):
        raise CniError(INVALID_ENV, f"CNI_NETNS {path} does not exist")
    return path


def _network(conf: dict[str, Any]) -> str:
    net = conf.get("network")
    if not isinstance(net, str) or not net:
        raise CniError(INVALID_CONFIG, 'the configuration names no netcore network: add "network": "NAME" to the netcore-cni plugin')
    return net


def _socket(conf: dict[str, Any]) -> str:
    sock = conf.get("socket") or DEFAULT_SOCKET
    if not isinstance(sock, str):
        raise CniError(INVALID_CONFIG, '"socket" must be the path of the netcore engine\'s socket')
    return sock[len("unix://"):] if sock.startswith("unix://") else sock


def _call(conf: dict[str, Any], path: str, body: dict[str, Any], not_found: int = INVALID_CONFIG) -> Any:
    """The engine never starts on demand here: a runtime's plugin must not spawn daemons."""
    try:
        status, answer = wire.post(_socket(conf), path, body, timeout=60)
    except wire.EngineUnreachable as exc:
        raise CniError(TRY_AGAIN, str(exc), "the netcore engine did not answer") from None
    if status < 400:
        return answer
    message = answer.get("message") if isinstance(answer, dict) else None
    code = not_found if status == 404 else INVALID_CONFIG if status == 400 else ENGINE_REFUSED
    raise CniError(code, message or f"HTTP {status}", f"netcore engine: HTTP {status}")


def _args() -> dict[str, str]:
    """``CNI_ARGS``: ``K=V;K=V`` (podman: ``IgnoreUnknown=1;K8S_POD_NAME=<name>``)."""
    out = {}
    for item in os.environ.get("CNI_ARGS", "").split(";"):
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _runtime_config(conf: dict[str, Any]) -> dict[str, Any]:
    rc = conf.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        raise CniError(INVALID_CONFIG, "runtimeConfig must be an object")
    return rc


def _aliases(conf: dict[str, Any], network: str) -> list[str]:
    """The ``aliases`` capability: ``{"<network name>": ["a", "b"]}``."""
    aliases = _runtime_config(conf).get("aliases") or {}
    names = aliases.get(conf.get("name"), aliases.get(network, [])) if isinstance(aliases, dict) else []
    return [a for a in names if isinstance(a, str) and a]


def _static_ip(conf: dict[str, Any], args: dict[str, str]) -> str | None:
    """``IP=`` in CNI_ARGS, or the first address of the ``ips`` capability / ``args.cni.ips``."""
    ips = _runtime_config(conf).get("ips") or ((conf.get("args") or {}).get("cni") or {}).get("ips") or []
    ip = args.get("IP") or (ips[0] if isinstance(ips, list) and ips and isinstance(ips[0], str) else "")
    return ip.split("/")[0] or None


# ----------------------------------------------------------------- commands --


def _add(conf: dict[str, Any], version: str) -> dict[str, Any]:
    cid, ifname = _container()
    network, netns = _network(conf), _netns()
    args = _args()
    ports = _runtime_config(conf).get("portMappings") or []
    if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
        raise CniError(INVALID_CONFIG, "runtimeConfig.portMappings must be a list of objects")
    name = args.get("K8S_POD_NAME") or cid
    body = {"ContainerID": cid, "IfName": ifname, "Netns": netns, "Network": network, "Name": name,
            "Aliases": _aliases(conf, network), "IP": _static_ip(conf, args),
            "PortMappings": [{k: p[k] for k in ("hostPort", "containerPort", "protocol", "hostIP") if k in p} for p in ports]}
    att = _call(conf, "/cni/add", body)
    return _result(att, version, conf.get("prevResult"))


def _result(att: dict[str, Any], version: str, prev: Any) -> dict[str, Any]:
    """The ADD result in ``version``'s shape, after whatever an earlier plugin returned."""
    prev = prev if isinstance(prev, dict) else {}
    interfaces = list(prev.get("interfaces") or [])
    ips = list(prev.get("ips") or [])
    routes = list(prev.get("routes") or [])
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


def _del(conf: dict[str, Any], version: str) -> None:
    cid, ifname = _container()
    _network(conf)
    try:
        _call(conf, "/cni/del", {"ContainerID": cid, "IfName": ifname})
    except CniError as exc:
        if exc.code != TRY_AGAIN:
            raise
        sys.stderr.write(f"netcore-cni: DEL {cid[:12]}/{ifname}: {exc.msg}; the engine reaps it when it starts again\n")
    return None


def _check(conf: dict[str, Any], version: str) -> None:
    if version in ("0.3.0", "0.3.1"):
        raise CniError(INCOMPATIBLE, f"config version {version} does not allow CHECK (0.4.0 or later)")
    cid, ifname = _container()
    network, netns = _network(conf), _netns()
    prev = conf.get("prevResult")
    if not isinstance(prev, dict):
        raise CniError(INVALID_CONFIG, "CHECK needs the prevResult of the ADD")
    ifaces = prev.get("interfaces") or []
    idx = next((i for i, itf in enumerate(ifaces) if isinstance(itf, dict) and itf.get("name") == ifname and itf.get("sandbox")), None)
    address = next((ip.get("address", "") for ip in prev.get("ips") or [] if isinstance(ip, dict) and ip.get("interface") == idx), "")
    _call(conf, "/cni/check", {"ContainerID": cid, "IfName": ifname, "Netns": netns, "Network": network, "Address": address},
          not_found=UNKNOWN_CONTAINER)
    return None


def _status(conf: dict[str, Any], version: str) -> None:
    network = _network(conf)
    try:
        _call(conf, "/cni/status", {"Network": network})
    except CniError as exc:
        raise CniError(NOT_READY, exc.msg, exc.details) from None
    return None


def _gc(conf: dict[str, Any], version: str) -> None:
    network = _network(conf)
    valid = conf.get("cni.dev/valid-attachments") or []
    if not isinstance(valid, list):
        raise CniError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    keep = [{"containerID": str(v.get("containerID", "")), "ifname": str(v.get("ifname", ""))} for v in valid if isinstance(v, dict)]
    _call(conf, "/cni/gc", {"Network": network, "Valid": keep})
    return None


_COMMANDS = {"ADD": _add, "DEL": _del, "CHECK": _check, "STATUS": _status, "GC": _gc}
