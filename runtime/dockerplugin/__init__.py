"""netcore's drivers and IPAM as Docker plugins (``netcore daemon --docker-plugins``).

The engine answers Docker's remote network driver protocol on
``DIR/netcore-<driver>.sock`` for each of its drivers that give containers an
interface of their own, and Docker's IPAM protocol on ``DIR/netcore-ipam.sock``
(default DIR ``/run/docker/plugins``, where dockerd looks). The sockets exist before
the engine has reconciled, so ``Plugin.Activate`` is answered at once; other calls
wait until the engine is ready. Only the core's public API is used; nothing here
calls dockerd. The sockets are removed when the engine stops.
"""

from __future__ import annotations

import logging
import os
import threading

from netcore import NetcoreError
from netcore.controller import Controller

from runtime.dockerplugin.ipam import IpamApi
from runtime.dockerplugin.network import Deferred, NetworkDriverApi
from runtime.dockerplugin.transport import PluginSocket

__all__ = ["DockerPlugins", "DEFAULT_DIR", "served_drivers"]

log = logging.getLogger("netcore.dockerplugin")
DEFAULT_DIR = "/run/docker/plugins"
PREFIX = "netcore-"


def served_drivers(ctl: Controller) -> list[str]:
    """Drivers that make sense under Docker: those that address their own interfaces
    (not host or none: Docker has its own)."""
    out = []
    for name in ctl.drivers():
        try:
            info = ctl.driver_info(name)
        except NetcoreError as exc:
            log.warning("docker plugins: driver %s: %s", name, exc)
            continue
        if info.addressing and not info.host_namespace:
            out.append(name)
    return out


class DockerPlugins:
    def __init__(self, ctl: Controller, directory: str = DEFAULT_DIR) -> None:
        self.ctl, self.directory = ctl, directory
        self.ready = threading.Event()
        self.sockets: list[PluginSocket] = []
        self.apis: list[NetworkDriverApi] = []

    def start(self) -> None:
        """Open every socket (all or none) and serve them; ``ready()`` once the engine is."""
        os.makedirs(self.directory, exist_ok=True)
        self.deferred = Deferred(self.ctl)
        try:
            for driver in served_drivers(self.ctl):
                api = NetworkDriverApi(self.ctl, driver, self.ready, self.deferred)
                self.apis.append(api)
                self._open(PREFIX + driver, {"Plugin.Activate": lambda a: {"Implements": ["NetworkDriver"]}, **api.methods()})
            ipam = IpamApi(self.ctl, self.ready, self.deferred)
            self._open(PREFIX + "ipam", {"Plugin.Activate": lambda a: {"Implements": ["IpamDriver"]}, **ipam.methods()})
        except BaseException:
            self.close()
            raise
        log.info("docker plugins on %s: %s", self.directory, ", ".join(s.name for s in self.sockets))

    def _open(self, name: str, methods: dict) -> None:
        sock = PluginSocket(name, os.path.join(self.directory, name + ".sock"), methods)
        self.sockets.append(sock)
        sock.start()

    def set_ready(self) -> None:
        """The engine has started: restore what the core does not know of, then serve."""
        with self.ctl.lock:
            self.ctl.firewall.coexist()  # dockerd may run already, with its FORWARD policy DROP
            for api in self.apis:
                api.restore()
        self.ready.set()

    def close(self) -> None:
        """Sockets first (no new calls), then the leaves still queued."""
        for sock in self.sockets:
            try:
                sock.close()
            except Exception:
                log.exception("closing %s", sock.path)
        self.sockets = []
        if getattr(self, "deferred", None) is not None:
            self.deferred.drain()
