"""Helpers (imported as ``pktlab``) for scapy packet tests inside real namespaces.

Scapy is imported once; its sockets are opened with the calling thread switched
into the target netns (``netcore.osl.netns.entered``), and a packet socket stays
bound to the namespace it was created in. Every frame is built with explicit
MACs and IPs: scapy's own route/ARP tables describe the host, never a sandbox.

``lab`` (fixture) gives:
- ``lab.network(**kw)``: a bridge network on a fresh subnet;
- ``lab.box(net, ip=None, ports=())``: a sandbox on it (``Box``: path, ip, mac, veth, ...),
  publishing ``ports`` (``PortBinding``s);
- ``lab.bridge_mac(net)``: the bridge's MAC as the host sees it;
- ``lab.sr1(box, frame)``: send from the box's eth0, wait for the answer;
- ``lab.send(where, frame)``;
- ``lab.capture(where, iface)``: a capture that starts now;
  ``where`` is a Box, a netns path, or None for the host netns;
- ``lab.listen_tcp(box, port)``: a listening TCP socket inside the box.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

from scapy.all import ARP, ICMP, IP, TCP, Ether, Raw, conf, sniff  # noqa: E402

from netcore import names  # noqa: E402
from netcore.models import Attachment, Endpoint, Network, PortBinding, Sandbox  # noqa: E402
from netcore.osl import netns  # noqa: E402

conf.verb = 0
BROADCAST = "ff:ff:ff:ff:ff:ff"
__all__ = ["ARP", "ICMP", "IP", "TCP", "Ether", "Raw", "BROADCAST", "token_filter", "Box", "Capture", "Lab", "link_mac"]


@dataclass
class Box:
    """One sandbox with one endpoint."""

    sandbox: Sandbox
    endpoint: Endpoint
    network: Network

    @property
    def path(self) -> str:
        return self.sandbox.netns_path

    @property
    def ip(self) -> str:
        return self.endpoint.ip

    @property
    def mac(self) -> str:
        return self.endpoint.mac

    @property
    def ifname(self) -> str:
        return self.endpoint.ifname

    @property
    def veth(self) -> str:
        """The host end of the endpoint's veth pair."""
        return names.veth_name(self.endpoint.id)

    @property
    def gateway(self) -> str:
        return self.network.gateway


def token_filter(token: bytes) -> Callable[[Any], bool]:
    """Matches frames carrying ``token`` in their payload: survives NAT, unlike addresses and ports."""
    return lambda p: token in bytes(p)


def _ok(lfilter: Callable[[Any], bool], p: Any) -> bool:
    """``lfilter(p)``, with a frame lacking the layers the filter looks at counting as no match."""
    try:
        return bool(lfilter(p))
    except (IndexError, AttributeError):
        return False


class Capture:
    """A packet socket opened before the traffic it must see.

    ``packets`` drains the socket into ``seen`` (every frame, whatever the filter) and
    returns the matching ones, so several questions can be asked of one capture.
    """

    def __init__(self, sock: Any, where: str) -> None:
        self.sock = sock
        self.where = where
        self.seen: list[Any] = []

    def _match(self, lfilter: Callable[[Any], bool]) -> list[Any]:
        return [p for p in self.seen if _ok(lfilter, p)]

    def packets(self, lfilter: Callable[[Any], bool], timeout: float = 0.5, first: bool = False) -> list[Any]:
        """Matching frames seen so far plus those arriving within ``timeout``.

        With ``first``, return as soon as one matches (for positive checks); otherwise
        wait the whole ``timeout`` (for "never arrives" checks).
        """
        if not (first and self._match(lfilter)):
            stop = (lambda p: _ok(lfilter, p)) if first else None
            # a short floor: what is already queued on the socket is read, nothing blocks
            self.seen += sniff(opened_socket=self.sock, timeout=max(timeout, 0.02), store=True, stop_filter=stop)
        return self._match(lfilter)

    def summary(self) -> list[str]:
        return [p.summary() for p in self.seen]


class Lab:
    def __init__(self, controller: Any, unique: str) -> None:
        self.c = controller
        self.unique = unique
        self._n = 0
        self._sockets: list[Any] = []

    # ------------------------------------------------------------ topology ----

    def network(self, subnet: str | None = None, **kw: Any) -> Network:
        self._n += 1
        return self.c.create_network(f"pk{self.unique}-{self._n}", subnet=subnet or self.unique.subnet(), **kw)

    def box(self, net: Network, ip: str | None = None, ports: tuple[PortBinding, ...] = ()) -> Box:
        self._n += 1
        name = f"pk{self.unique}-{self._n}"
        sb = self.c.setup_sandbox(secrets.token_hex(32), name, [Attachment(net.name, ip=ip)], ports=ports)
        (ep,) = self.c.sandbox_endpoints(sb)
        assert ep.mac == names.mac_from_ipv4(ep.ip), ep
        return Box(sb, ep, net)

    @staticmethod
    def bridge(net: Network) -> str:
        return names.bridge_name(net.id)

    @staticmethod
    def bridge_mac(net: Network) -> str:
        return link_mac(names.bridge_name(net.id))

    # ------------------------------------------------------------ packets -----

    def _open(self, path: str | None, iface: str, listen: bool) -> Any:
        with netns.entered(path):
            sock = (conf.L2listen if listen else conf.L2socket)(iface=iface, promisc=False)
        self._sockets.append(sock)
        return sock

    def send(self, where: Box | str | None, frame: Any, count: int = 1, iface: str | None = None) -> None:
        """Send from the box's eth0, or from ``iface`` in the netns at a path (None: the host)."""
        path, iface = _where(where, iface)
        sock = self._open(path, iface, listen=False)
        try:
            for _ in range(count):
                sock.send(frame)
        finally:
            sock.close()

    def sr1(self, box: Box, frame: Any, timeout: float = 1.0) -> Any:
        sock = self._open(box.path, box.ifname, listen=False)
        try:
            return sock.sr1(frame, timeout=timeout, verbose=0)
        finally:
            sock.close()

    @contextmanager
    def capture(self, where: Box | str | None, iface: str | None = None) -> Iterator[Capture]:
        """Capture (both directions) on the box's eth0, or on ``iface`` in the netns at a path (None: the host)."""
        path, iface = _where(where, iface)
        sock = self._open(path, iface, listen=True)
        try:
            yield Capture(sock, f"{iface}@{path or 'host'}")
        finally:
            sock.close()

    def listen_tcp(self, box: Box, port: int = 0) -> socket.socket:
        with netns.entered(box.path):
            srv = socket.create_server((box.ip, port), backlog=8)
        self._sockets.append(srv)
        return srv

    def connect_tcp(self, box: Box, ip: str, port: int, timeout: float = 2.0) -> socket.socket:
        with netns.entered(box.path):
            cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(cli)
        cli.settimeout(timeout)
        cli.connect((ip, port))
        return cli

    def close(self) -> None:
        for s in self._sockets:
            try:
                s.close()
            except Exception:
                pass
        self._sockets.clear()




def _where(where: Box | str | None, iface: str | None) -> tuple[str | None, str]:
    if isinstance(where, Box):
        return where.path, iface or where.ifname
    if iface is None:
        raise ValueError("an interface name is needed outside a box")
    return where, iface


def link_mac(name: str, path: str | None = None) -> str:
    """MAC of a link in the host netns (or in the netns at ``path``), as ``ip -j link`` shows it."""
    argv = ["ip", "-j", "link", "show", "dev", name]
    if path:
        argv = ["nsenter", f"--net={path}", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["address"]
