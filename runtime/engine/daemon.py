"""The engine: owns the controller and the containers, serves the API until stopped.

At start it reconciles the store with the kernel, makes sure the predefined
networks exist (``bridge``, ``host``, ``none``) and re-adopts containers that kept
running while no engine was up.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from netcore import Forbidden, InvalidConfig, NotFound, names
from netcore.controller import Controller, on_host
from netcore.dns import EmbeddedDns
from netcore.plugin_info import as_dicts, describe

from runtime.api import cni as cni_routes
from runtime.api import images as image_routes
from runtime.api import system as system_routes
from runtime.build.runner import ContainerRunner
from runtime.build.service import BuildService
from runtime.api import schemas as S
from runtime.api.server import RAW, ApiServer, Limits, Router, Stream
from runtime.api.views import container_view, network_view, state_paths
from runtime.engine import files, listing, logstore, process, rootdir
from runtime.engine.config import DaemonConfig
from runtime.engine.attach import attach
from runtime.engine.cni import CniAttachments
from runtime.engine.containers import Containers
from runtime.engine.images import ImageStore
from runtime.engine.volumes import Volumes
from runtime.engine.restart import parse_signal

__all__ = ["Engine", "EngineServer", "Workers", "serve", "predefined_networks"]

log = logging.getLogger("netcore.engine")
# drivers of which an engine has one network, its predefined one (Docker's host and null):
# the name asked for -> the driver's name here
SINGLE_INSTANCE = {"host": "host", "none": "none", "null": "none"}


DEFAULT_DRIVER = "bridge"  # Docker's: the driver of `network create` without -d


def predefined_networks(root: str) -> list[dict[str, Any]]:
    """The networks every engine has from its first start: Docker's three."""
    bridge_opts = {"com.docker.network.bridge.name": "netcore0"} if root.rstrip("/") == names.DEFAULT_ROOT else {}
    return [
        {"name": "bridge", "driver": "bridge", "options": bridge_opts},
        {"name": "host", "driver": "host"},
        {"name": "none", "driver": "none"},
    ]


class Engine:
    def __init__(self, root: str, controller: Controller | None = None, settings: DaemonConfig | None = None) -> None:
        self.root = os.path.abspath(root)
        settings = settings or DaemonConfig()
        self.resolv_conf = files.engine_resolv_conf(self.root, settings.dns)
        cluster = None
        if settings.cluster_store and settings.advertise:
            from netcore.cluster import Cluster  # the etcd client only for engines in a cluster

            cluster = Cluster(settings.cluster_store, settings.advertise, ttl=settings.ttl)
        self.controller = controller or on_host(
            self.root, plugins=[("dns", EmbeddedDns(resolv_conf=self.resolv_conf))], cluster=cluster,
            default_driver=DEFAULT_DRIVER, essential=sorted({n["driver"] for n in predefined_networks(self.root)}),
        )
        self.images = ImageStore(self.root, users=self._image_users)
        self.volumes = Volumes(self.root, users=self._volume_users)
        self.containers = Containers(self.controller, self.root, resolv_conf=self.resolv_conf, images=self.images, volumes=self.volumes)
        self.builds = BuildService(self.root, self.images, ContainerRunner(self.containers))
        self.on_reset: Any = None  # set by serve(): a reset engine exits rather than re-create defaults

    def _image_users(self, image_id: str) -> list[tuple[str, bool]]:
        return [(c["id"], c["state"] == "running") for c in self.containers.list(all=True) if c.get("image_id") == image_id]

    def _volume_users(self, name: str) -> list[str]:
        return [c["id"] for c in self.containers.list(all=True)
                if any(m.get("Type") == "volume" and m.get("Name") == name for m in c.get("mounts") or ())]

    def start(self) -> None:
        self.controller.start()
        for spec in predefined_networks(self.root):
            try:
                self.controller.network(spec["name"])
            except NotFound:
                self.controller.create_network(predefined=True, **spec)
        self.containers.adopt()

    def close(self) -> None:
        self.containers.close()
        if getattr(self, "cni", None) is not None:
            self.cni.close()  # the interfaces CNI DELs handed off go before the engine does
        self.controller.close()

    # ------------------------------------------------------------ API -------

    def router(self) -> Router:
        """The route table; each route declares the types of its body and query (``schemas``)."""
        r = Router()
        ctl, ctr = self.controller, self.containers
        r.add("GET", "/_ping", lambda **_: {"ok": True, "root": self.root})
        r.add("GET", "/plugins", lambda **_: self.plugins())
        r.add("GET", "/networks", lambda query, **_: listing.networks(ctl, query))
        r.add("POST", "/networks/create", lambda body, **_: network_view(ctl, self._network_event(self._create_network(body), "create")),
              body=S.NetworkCreate)
        r.add("POST", "/networks/prune", lambda query, **_: self._prune_networks(query), body=S.Empty)
        r.add("GET", r"/networks/(?P<ref>[^/]+)", lambda ref, **_: network_view(ctl, ctl.network(ref)))
        r.add("DELETE", r"/networks/(?P<ref>[^/]+)", lambda ref, **_: {"Id": self._network_event(ctl.delete_network(ref), "destroy").id})
        r.add("POST", r"/networks/(?P<ref>[^/]+)/connect", self._connect, body=S.NetworkConnect)
        r.add("POST", r"/networks/(?P<ref>[^/]+)/disconnect", self._disconnect, body=S.NetworkDisconnect)
        r.add("GET", "/containers/json", lambda query, **_: listing.containers(ctl, ctr, self.images, query), query=S.ListQuery)
        r.add("POST", "/containers/run", lambda body, **_: self._run(body), body=S.ContainerRun)
        r.add("POST", "/containers/create", lambda body, **_: {"Id": ctr.create(**_container_args(body))["id"], "Warnings": []},
              body=S.ContainerRun)
        r.add("GET", r"/containers/(?P<ref>[^/]+)/json", lambda ref, **_: self._inspect(ref))
        r.add("POST", r"/containers/(?P<ref>[^/]+)/start", lambda ref, **_: {"Id": ctr.start(ref)["id"]}, body=S.Empty)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/stop", lambda ref, query, **_: {"Id": ctr.stop(ref, query["t"])["id"]},
              body=S.Empty, query=S.StopQuery)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/restart", lambda ref, query, **_: {"Id": ctr.restart(ref, query["t"])["id"]},
              body=S.Empty, query=S.StopQuery)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/kill", lambda ref, query, **_: {"Id": ctr.kill(ref, parse_signal(query["signal"]))["id"]},
              body=S.Empty, query=S.KillQuery)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/attach", lambda ref, query, **_: attach(ctr, ref, query), query=S.AttachQuery)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/resize", self._resize, body=S.Empty, query=S.ResizeQuery)
        r.add("POST", r"/containers/(?P<ref>[^/]+)/wait", self._wait, body=S.Empty, query=S.WaitQuery)
        r.add("DELETE", r"/containers/(?P<ref>[^/]+)",
              lambda ref, query, **_: {"Id": ctr.remove(ref, force=query["force"], volumes=query["v"]).get("id")}, query=S.RemoveQuery)
        r.add("GET", r"/containers/(?P<ref>[^/]+)/logs", self._logs, query=S.LogsQuery)
        r.add("POST", "/system/reset", lambda **_: self.reset(), body=S.Empty)
        image_routes.add_routes(r, self.images, self.volumes, lambda: self.containers.events)
        system_routes.add_routes(r, self)
        self.cni = CniAttachments(ctl)
        cni_routes.add_routes(r, self.cni)
        r.add("POST", "/build", lambda body, query, **_: Stream(self.builds.handle(body, query)), body=RAW)
        return r

    def plugins(self) -> list[dict[str, str]]:
        """The network and IPAM drivers loaded, with their distribution and version (``netcore plugins``, ``system info``)."""
        return as_dicts(describe(self.controller.hooks.pm))

    def _network_event(self, net: Any, action: str) -> Any:
        self.containers.events.publish("network", action, net.id, name=net.name, type=net.driver)
        return net

    def _prune_networks(self, query: dict[str, Any]) -> dict[str, Any]:
        before = {n.name: n for n in self.controller.networks()}
        answer = listing.prune_networks(self.controller, query)
        for name in answer["NetworksDeleted"]:
            self._network_event(before[name], "destroy")
        return answer

    def _create_network(self, body: dict[str, Any]) -> Any:
        ipam = (body["IPAM"] or {}).get("Config") or [{}]
        if len(ipam) > 1:
            raise InvalidConfig("only one --subnet per network is supported")
        cfg = ipam[0]
        driver = body["Driver"] or DEFAULT_DRIVER
        if driver in SINGLE_INSTANCE and any(n.driver == SINGLE_INSTANCE[driver] for n in self.controller.networks()):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')  # Docker's words
        return self.controller.create_network(
            name=body["Name"],
            driver=driver,
            subnet=cfg.get("Subnet"),
            gateway=cfg.get("Gateway"),
            ip_range=cfg.get("IPRange"),
            options=body["Options"] or {},
            labels=body["Labels"] or {},
            internal=body["Internal"],
            ipam_driver=(body["IPAM"] or {}).get("Driver") or "default",
            attachable=body["Attachable"],
            aux_addresses=cfg.get("AuxiliaryAddresses") or {},
        )

    def _connect(self, ref: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        cfg = body["EndpointConfig"] or {}
        self.containers.connect(
            ref,
            body["Container"],
            ip=cfg.get("IPAddress") or None,
            aliases=cfg.get("Aliases") or [],
            gw_priority=cfg.get("GwPriority") or 0,
        )
        return {}

    def _disconnect(self, ref: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.containers.disconnect(ref, body["Container"])
        return {}

    def _run(self, body: dict[str, Any]) -> dict[str, Any]:
        rec = self.containers.run(**_container_args(body))
        return container_view(self.controller, rec, self.containers.health.state(rec["id"])) if not rec["auto_remove"] else {"Id": rec["id"], "Name": "/" + rec["name"]}

    def _inspect(self, ref: str) -> dict[str, Any]:
        rec = self.containers.get(ref)
        view = container_view(self.controller, rec, self.containers.health.state(rec["id"]))
        sdir = self.containers.state_dir(rec["id"])
        return {**view, **state_paths(sdir, *process.upper_dirs(sdir))}

    def _wait(self, ref: str, query: dict[str, Any], **_: Any) -> Any:
        """``condition=next-exit``: registered before the answer's headers go out, so a client
        that has them can start the container (``run``, ``start -a``) and miss no exit."""
        if query["condition"] == "next-exit":
            result = self.containers.next_exit(ref)
            return Stream(json.dumps({"StatusCode": result()}).encode() for _ in (0,))
        return {"StatusCode": self.containers.wait(ref)}

    def _resize(self, ref: str, query: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The client's terminal size, for a container with one (others: nothing to do)."""
        stdio = self.containers.stdio(self.containers.get(ref)["id"])
        if stdio is not None:
            stdio.resize(query["h"], query["w"])
        return {}

    def _logs(self, ref: str, query: dict[str, Any], **_: Any) -> Stream:
        """Docker's ``GET /containers/{id}/logs`` (``logstore``): with ``stdout``/``stderr`` the
        streams asked for, multiplexed unless the container has a terminal; without either,
        both as plain bytes."""
        cid, path = self.containers.log_path(ref)
        try:
            since, until = logstore.parse_query_time(query["since"]), logstore.parse_query_time(query["until"])
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None
        if not os.path.exists(path):
            return Stream(iter(()))
        rec = self.controller.store.get("container", cid) or {}
        picked = query["stdout"] or query["stderr"]
        streams = tuple(s for s, on in ((logstore.STDOUT, query["stdout"]), (logstore.STDERR, query["stderr"])) if on or not picked)
        tail = None if query["tail"] == "all" else int(query["tail"])

        def done() -> bool:
            current = self.controller.store.get("container", cid)
            return current is None or current["state"] != "running"

        exited = self.containers.exit_event(cid) if query["follow"] else None
        recs = logstore.follow(path, done, wait=exited.wait if exited else time.sleep, since=since, until=until, tail=tail,
                               streams=streams, follow=query["follow"])
        multiplexed = picked and not rec.get("tty")
        return Stream(logstore.render(batch, query["timestamps"], multiplexed) for batch in recs)

    def reset(self) -> dict[str, Any]:
        """Remove every container and network of this engine, predefined ones included."""
        self.containers.reset()
        if getattr(self, "cni", None) is not None:
            self.cni.close()
        self.controller.reset()
        if self.on_reset is not None:
            self.on_reset()
        return {}


def _container_args(body: dict[str, Any]) -> dict[str, Any]:
    """The create / run request (``schemas.ContainerRun``) -> ``Containers.create``'s arguments."""
    return dict(
        argv=list(body["Cmd"] or []),
        name=body["Name"] or None,
        networks=body["Networks"] or None,
        env=body["Env"] or {},
        workdir=body["WorkingDir"] or None,
        hostname=body["Hostname"] or None,
        auto_remove=body["AutoRemove"],
        exposed_ports=body["ExposedPorts"] or {},
        port_bindings={k: v or [] for k, v in (body["PortBindings"] or {}).items()},
        publish_all=body["PublishAllPorts"],
        dns=body["Dns"] or [],
        tty=body["Tty"],
        open_stdin=body["OpenStdin"],
        stdin_once=body["StdinOnce"],
        restart_policy=body["RestartPolicy"],
        image=body["Image"] or "host",
        entrypoint=body["Entrypoint"],
        user=body["User"] or None,
        mounts=body["Mounts"] or [],
        read_only=body["ReadonlyRootfs"],
        cap_add=body["CapAdd"] or [],
        cap_drop=body["CapDrop"] or [],
        privileged=body["Privileged"],
        labels=body["Labels"] or {},
        healthcheck=body["Healthcheck"] or None,
        run_config={k: body.get(k) for k in ("ExtraHosts", "DnsSearch", "DnsOptions", "MacAddress", "Init", "StopSignal",
                                             "StopTimeout", "Memory", "NanoCpus")},
    )


class Workers:
    """Threads that serve one request each and are then reused; as many as requests at once.

    A new thread per request (``ThreadingMixIn``) leaks what libraries keep per thread:
    pyroute2 0.9 gives every thread that uses a shared ``IPRoute`` (``netns.host()``) its
    own netlink socket, freed only with the ``IPRoute``, so each API call that touched
    the kernel left one descriptor behind. Threads here are never ended, which bounds
    that to the most requests ever served at once, which the API server caps
    (``Limits.max_active``); a ``logs -f`` or ``wait`` holds its thread as long as it needs.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads waiting for a job that no submit() has counted on yet

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def idle_threads(self) -> int:
        return self._waiting

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            name = None
            if self._waiting == 0:
                self._threads += 1
                name = f"api-{self._threads}"
            else:
                self._waiting -= 1  # that waiting thread will take this job
            self._jobs.put((fn, args))
        if name is not None:
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            fn, args = self._jobs.get()
            try:
                fn(*args)
            except Exception:
                log.exception("request worker")
            with self._lock:
                self._waiting += 1


class EngineServer(ApiServer):
    """The API server on reused threads (see ``Workers``)."""

    def __init__(self, path: str, router: Router, workers: Workers | None = None, limits: Limits | None = None) -> None:
        self.workers = workers or Workers()
        super().__init__(path, router, limits=limits, submit=self.workers.submit)


def serve(root: str, socket_path: str, settings: DaemonConfig | None = None, limits: Limits | None = None) -> None:
    """Run the engine in the foreground until SIGTERM or SIGINT.

    First it claims its root and socket (``rootdir``): a second engine on either
    stops here with one line, before it has changed anything.
    """
    root = os.path.abspath(root)
    rootdir.check_mount_namespace()
    held = rootdir.lock(root, socket_path)
    try:
        rootdir.secure(root)
        process.raise_fd_limit()
        engine = Engine(root, settings=settings)
        engine.containers.hide.append(os.path.dirname(os.path.abspath(socket_path)))  # never inside a host-image container
        plugins = None
        if settings is not None and settings.docker_plugins:  # sockets first: dockerd's Activate is answered at once
            from runtime.dockerplugin import DockerPlugins

            plugins = DockerPlugins(engine.controller, settings.docker_plugins_dir)
            plugins.start()
        try:
            engine.start()
            if plugins is not None:
                plugins.set_ready()
            server = EngineServer(socket_path, engine.router(), limits=limits)
        except BaseException:
            if plugins is not None:
                plugins.close()
            engine.close()
            raise
        stop = threading.Event()

        def _shutdown(signum: int, frame: Any) -> None:
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

        engine.on_reset = lambda: threading.Timer(0.1, _shutdown, (0, None)).start()
        signal.signal(signal.SIGTERM, _shutdown)
        signal.signal(signal.SIGINT, _shutdown)
        log.info("engine ready: root %s, socket %s", engine.root, socket_path)
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            if plugins is not None:
                plugins.close()
            server.server_close()
            try:
                os.unlink(socket_path)
            except FileNotFoundError:
                pass
            engine.close()
    finally:
        held.release()
