"""The Container Network Model: networks, endpoints, sandboxes, and what drivers return.

Records are plain dataclasses that round-trip through JSON (``to_dict`` /
``from_dict``) so the store, the API and remote drivers all see the same shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Network",
    "Endpoint",
    "Sandbox",
    "Attachment",
    "PortBinding",
    "InterfaceInfo",
    "JoinInfo",
    "StaticRoute",
    "DriverInfo",
    "Pool",
    "EngineContext",
    "LOCAL",
    "GLOBAL",
]

LOCAL = "local"
GLOBAL = "global"

T = TypeVar("T")


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Network(_Record):
    """A named group of endpoints that can talk to each other."""

    id: str
    name: str
    driver: str
    scope: str = LOCAL
    ipam_driver: str = "default"
    subnet: str | None = None  # CIDR, None for drivers without addressing (host, none)
    gateway: str | None = None  # bare IP
    ip_range: str | None = None  # CIDR inside subnet that addresses are handed from
    pool_id: str | None = None
    options: dict[str, str] = field(default_factory=dict)  # driver options (-o k=v)
    labels: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    predefined: bool = False  # bridge/host/none: never removable
    attachable: bool = False  # Docker's flag (swarm's; shown in inspect, no effect on one host)
    aux_addresses: dict[str, str] = field(default_factory=dict)  # name -> IP reserved in IPAM, never handed out
    created: str = ""

    @property
    def prefixlen(self) -> int | None:
        return int(self.subnet.split("/")[1]) if self.subnet else None


@dataclass
class Endpoint(_Record):
    """One attachment of one sandbox to one network."""

    id: str
    network_id: str
    name: str  # the container's name
    sandbox_id: str = ""
    address: str | None = None  # CIDR, e.g. 10.1.0.2/24
    mac: str | None = None
    ifname: str = ""  # the interface name inside the sandbox (eth0, eth1, ...)
    gateway: str | None = None  # set at join when this network gives a default route
    aliases: list[str] = field(default_factory=list)  # DNS names besides the container's name
    options: dict[str, str] = field(default_factory=dict)
    ports: list[PortBinding] = field(default_factory=list)  # host ports published through it (concrete)
    gw_priority: int = 0  # the sandbox's default route goes to its endpoint with the highest
    host: str = ""  # global networks: the advertised address of the engine that owns it (its VTEP)
    dns_names: list[str] = field(default_factory=list)  # global networks: its names for the other hosts' DNS

    @property
    def ip(self) -> str | None:
        return self.address.split("/")[0] if self.address else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        ep = super().from_dict(data)
        ep.ports = [PortBinding.from_dict(p) for p in data.get("ports") or ()]
        return ep


@dataclass
class Sandbox(_Record):
    """One container's network stack. ``netns_path`` is None for the host's own namespace."""

    id: str
    netns_path: str | None
    name: str = ""
    endpoints: list[str] = field(default_factory=list)  # endpoint ids, in join order
    hostname: str = ""  # a DNS name of the container besides its name and aliases
    dns_servers: list[str] = field(default_factory=list)  # upstream resolvers (--dns); empty: the host's
    ports: list[PortBinding] = field(default_factory=list)  # requested publications (-p); see Endpoint.ports
    gateway_endpoint: str = ""  # id of the endpoint holding the default route (and the published ports)
    external: bool = False  # the netns is someone else's (a CNI runtime's): netcore uses it, never deletes it

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sandbox:
        sb = super().from_dict(data)
        sb.ports = [PortBinding.from_dict(p) for p in data.get("ports") or ()]
        return sb


@dataclass(frozen=True)
class Attachment:
    """A request to put a sandbox on a network: ``--network name=NET,ip=IP,alias=A,gw-priority=N``."""

    network: str  # name, id or unique id prefix
    ip: str | None = None
    aliases: tuple[str, ...] = ()
    gw_priority: int = 0
    ifname: str = ""  # the interface's name in the sandbox (CNI_IFNAME); empty: the next free ethN
    mac: str | None = None  # ``--mac-address``: the interface's MAC (default: the driver's choice)


@dataclass(frozen=True)
class PortBinding(_Record):
    """One published port: ``-p [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[/PROTO]``.

    Requested on the sandbox (``host_port`` 0: any free port; ``host_port_end``:
    any free port in ``host_port..host_port_end``); concrete on the endpoint that
    publishes it (one host port, ``host_port_end`` 0). ``host_ip`` "" is every address.
    """

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0


@dataclass(frozen=True)
class InterfaceInfo:
    """What ``create_endpoint`` may fill in that IPAM did not: the MAC, or an address."""

    mac: str | None = None
    address: str | None = None

    @classmethod
    def mac_from_ip(cls, endpoint: Endpoint) -> InterfaceInfo | None:
        """Docker's MAC for an endpoint nobody chose one for: derived from its IPv4 address
        (``02:42:`` + the four bytes), so it is the same after a restart. None when the MAC was
        asked for (``--mac-address``) or there is no address to derive it from. For drivers'
        ``create_endpoint``."""
        if endpoint.mac or not endpoint.address:
            return None
        from netcore.names import mac_from_ipv4

        return cls(mac=mac_from_ipv4(endpoint.address))


@dataclass(frozen=True)
class StaticRoute:
    destination: str  # CIDR
    next_hop: str | None = None  # None: directly connected on the endpoint's interface


@dataclass(frozen=True)
class JoinInfo:
    """What ``join`` tells the core about the interface it made for the sandbox.

    ``created_in_sandbox``: the driver already made ``endpoint.ifname`` inside
    the sandbox; otherwise ``src_ifname`` names a link in the host namespace that
    the core moves into the sandbox and renames to ``endpoint.ifname``.
    """

    src_ifname: str | None = None
    created_in_sandbox: bool = False
    gateway: str | None = None
    static_routes: tuple[StaticRoute, ...] = ()
    disable_gateway_service: bool = False


@dataclass(frozen=True)
class DriverInfo:
    name: str
    data_scope: str = LOCAL  # where the driver's state lives: local (SQLite) or global (cluster)
    connectivity_scope: str = LOCAL  # how far its connectivity reaches
    addressing: bool = True  # False: the network takes no IPAM pool (host, none)
    host_namespace: bool = False  # True: its sandboxes are the host's own netns (host)
    ipam: str | None = None  # the IPAM its networks use unless --ipam-driver names another (routed: its block IPAM)
    link_local: bool = False  # True: its networks may take subnets in 169.254.0.0/16, which are refused otherwise
    # True: it makes the gateway network (names.GATEWAY_NETWORK, Docker's docker_gwbridge) that
    # gives containers on multi-host networks egress and published ports; the core creates that
    # network with the first driver declaring it, with ``gateway_options`` (bridge: icc off)
    gateway_bridge: bool = False
    gateway_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pool:
    """An address pool handed out by an IPAM driver."""

    pool_id: str
    subnet: str  # CIDR
    gateway: str | None = None  # bare IP, when the IPAM dictates one


@dataclass(frozen=True)
class EngineContext:
    """Engine-wide settings handed to every plugin through the historic ``configure`` hook."""

    root: str  # the engine's root dir
    tag: str  # short id of this engine: keeps kernel objects of engines side by side apart
    firewall: Any  # netcore.osl.nft.Firewall of this engine
    cluster: Any = None  # netcore.cluster.Cluster when the engine is in a cluster, else None
    store: Any = None  # the engine's local store (SQLite): for drivers that keep records of their own
