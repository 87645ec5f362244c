"""API routes behind ``netcore-cni``: ``POST /cni/{add,del,check,gc,status}``.

The executable parses the CNI request (env and stdin) and shapes the result; these
routes carry it in netcore's terms (container id, interface, netns, network name) to
``runtime.engine.cni``. Errors are the engine's usual ones (404 no such network, 409 a
second ADD, 400 a bad netns), one line each; the executable maps them to CNI codes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, StrictStr

from netcore import InvalidConfig, PortBinding

from runtime.api.schemas import Body, Short
from runtime.api.server import Router
from runtime.engine.cni import CniAttachments

__all__ = ["add_routes"]

Port = Annotated[StrictInt, Field(ge=0, le=65535)]


class CniPort(Body):
    hostPort: Port = 0
    containerPort: Port = 0
    protocol: Short = "tcp"
    hostIP: Short = ""


class CniAttach(Body):
    ContainerID: Short
    IfName: Annotated[StrictStr, Field(min_length=1, max_length=15)]
    Netns: Annotated[StrictStr, Field(max_length=4096)] = ""
    Network: Short
    Name: Short = ""
    Aliases: list[Short] | None = None
    PortMappings: list[CniPort] | None = None
    IP: Short | None = None
    Address: Short = ""  # CHECK: the address of the runtime's cached result


class CniDel(Body):
    ContainerID: Short
    IfName: Short


class CniValid(Body):
    containerID: Short
    ifname: Short


class CniGc(Body):
    Network: Short
    Valid: list[CniValid] | None = None


class CniNetwork(Body):
    Network: Short


def _ports(items: list[dict[str, Any]] | None) -> list[PortBinding]:
    out = []
    for p in items or ():
        proto = (p["protocol"] or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp") or not p["containerPort"]:
            raise InvalidConfig(f"invalid port mapping {p['hostPort']}:{p['containerPort']}/{p['protocol']}")
        out.append(PortBinding(container_port=p["containerPort"], proto=proto, host_ip=p["hostIP"], host_port=p["hostPort"]))
    return out


def add_routes(r: Router, cni: CniAttachments) -> None:
    r.add("POST", "/cni/add", lambda body, **_: cni.add(
        body["ContainerID"], body["IfName"], body["Netns"], body["Network"], name=body["Name"], aliases=body["Aliases"],
        ports=_ports(body["PortMappings"]), ip=body["IP"]), body=CniAttach)
    r.add("POST", "/cni/del", lambda body, **_: cni.delete(body["ContainerID"], body["IfName"]), body=CniDel)
    r.add("POST", "/cni/check", lambda body, **_: cni.check(
        body["ContainerID"], body["IfName"], body["Netns"], body["Network"], address=body["Address"]), body=CniAttach)
    r.add("POST", "/cni/gc", lambda body, **_: cni.gc(
        body["Network"], [(v["containerID"], v["ifname"]) for v in body["Valid"] or ()]), body=CniGc)
    r.add("POST", "/cni/status", lambda body, **_: cni.status(body["Network"]), body=CniNetwork)
