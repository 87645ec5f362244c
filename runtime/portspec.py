"""Docker's port notation: ``-p``/``--expose`` specs, the API's PortBindings, and how ports print.

Pure string work shared by the CLI (parse what the user typed, so a typo fails
before the engine is asked) and the engine (turn the API's shape into the core's
``PortBinding`` and back). The API shape is Docker's:

    ExposedPorts  {"80/tcp": {}}
    PortBindings  {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}   HostPort "" = any,
                                                                        "8000-8010" = one of
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PortSpecError",
    "parse_publish",
    "parse_expose",
    "to_bindings",
    "format_ps",
    "ports_view",
]

PROTOS = ("tcp", "udp")


class PortSpecError(ValueError):
    pass


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise PortSpecError(f"invalid {what}: {text}")
    return int(text)


def _range(text: str, what: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    start = _port(low, what)
    end = _port(high, what) if sep else start
    if end < start:
        raise PortSpecError(f"invalid {what}: {text}")
    return start, end


def _split_proto(text: str) -> tuple[str, str]:
    port, sep, proto = text.partition("/")
    proto = proto.lower() if sep else "tcp"
    if proto not in PROTOS:
        raise PortSpecError(f"invalid proto: {proto}")
    return port, proto


def _check_ip(ip: str) -> str:
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise PortSpecError(f"invalid IP address: {ip}")
    return ip


def parse_publish(spec: str) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """One ``-p [IP:][HOST[-END]:]CONTAINER[-END][/PROTO]``: (ExposedPorts, PortBindings) entries."""
    rest, proto = _split_proto(spec)
    parts = rest.split(":")
    if len(parts) == 1:
        ip, host, cont = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, cont = "", parts[0], parts[1]
    elif len(parts) == 3:
        ip, host, cont = parts
        if ip:
            _check_ip(ip)
    else:
        raise PortSpecError(f"invalid port specification: {spec}")
    if not cont:
        raise PortSpecError(f"no port specified: {spec}")
    c_low, c_high = _range(cont, "containerPort")
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    if host:
        h_low, h_high = _range(host, "hostPort")
        if c_low != c_high and h_high - h_low != c_high - c_low:
            raise PortSpecError(f"invalid ranges specified for container and host Ports: {cont} and {host}")
    for i, c in enumerate(range(c_low, c_high + 1)):
        key = f"{c}/{proto}"
        exposed[key] = {}
        if not host:
            hp = ""
        elif c_low != c_high:  # ranges of equal length map one to one
            hp = str(h_low + i)
        else:  # one container port, a host range: any free one of the range
            hp = str(h_low) if h_low == h_high else f"{h_low}-{h_high}"
        bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    return exposed, bindings


def parse_expose(spec: str) -> dict[str, Any]:
    """One ``--expose PORT[-END][/PROTO]``."""
    rest, proto = _split_proto(spec)
    low, high = _range(rest, "port")
    return {f"{p}/{proto}": {} for p in range(low, high + 1)}


def to_bindings(port_bindings: dict[str, list[dict[str, str]]]) -> list[dict[str, Any]]:
    """The API's PortBindings as the core's PortBinding fields (``PortBinding(**d)``)."""
    out = []
    for key, hosts in port_bindings.items():
        cport, proto = _split_proto(key)
        for h in hosts or [{}]:
            hp = (h.get("HostPort") or "").strip()
            low, high = _range(hp, "hostPort") if hp else (0, 0)
            ip = h.get("HostIp") or ""
            if ip == "0.0.0.0":
                ip = ""
            out.append(
                {
                    "container_port": _port(cport, "containerPort"),
                    "proto": proto,
                    "host_ip": _check_ip(ip) if ip else "",
                    "host_port": low,
                    "host_port_end": high if high != low else 0,
                }
            )
    return out


def ports_view(exposed: dict[str, Any], published: list[Any]) -> dict[str, list[dict[str, str]] | None]:
    """``NetworkSettings.Ports`` of inspect: every exposed port, with its host bindings or null."""
    out: dict[str, list[dict[str, str]] | None] = {key: None for key in exposed}
    for b in published:
        out.setdefault(f"{b.container_port}/{b.proto}", None)
        entry = {"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)}
        out[f"{b.container_port}/{b.proto}"] = (out[f"{b.container_port}/{b.proto}"] or []) + [entry]
    return out


def format_ps(ports: dict[str, list[dict[str, str]] | None]) -> str:
    """The PORTS column as Docker prints it: ``0.0.0.0:8000-8002->7000-7002/tcp, 443/tcp``.

    Runs of consecutive container ports published on consecutive host ports of one
    address (or all unpublished) are shown as one range.
    """
    rows: list[tuple[str, str, int, int | None]] = []  # (proto, host ip, container port, host port)
    for key, hosts in ports.items():
        port, proto = key.split("/")
        for h in hosts or [None]:
            rows.append((proto, h["HostIp"] if h else "", int(port), int(h["HostPort"]) if h else None))
    rows.sort(key=lambda r: (r[3] is None, r[0], r[1], r[2], r[3] or 0))
    runs: list[list[tuple[str, str, int, int | None]]] = []
    for r in rows:
        last = runs[-1][-1] if runs else None
        if last and (last[0], last[1]) == (r[0], r[1]) and r[2] == last[2] + 1 and (
            (r[3] is None and last[3] is None) or (r[3] is not None and last[3] is not None and r[3] == last[3] + 1)
        ):
            runs[-1].append(r)
        else:
            runs.append([r])

    def span(a: int, b: int) -> str:
        return str(a) if a == b else f"{a}-{b}"

    shown = []
    for run in runs:
        (proto, ip, c0, h0), (_, _, c1, h1) = run[0], run[-1]
        cont = f"{span(c0, c1)}/{proto}"
        shown.append(cont if h0 is None else f"{ip}:{span(h0, h1)}->{cont}")  # type: ignore[arg-type]
    return ", ".join(shown)
