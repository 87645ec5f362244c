"""Container lifecycle in the engine: records, network sandbox, files, process, restarts.

A container's record lives in the engine's store (kind ``container``); its files
(hosts, resolv.conf, hostname, log, exit code) under ``<root>/containers/<id>/``.
Network setup goes through the core's public API (``Controller``) only.

States, as Docker shows them: ``created`` (made, never started) -> ``running`` ->
``exited``; ``restarting`` while a restart policy waits to start it again (see
``restart.py``); ``removing`` while ``rm`` tears it down. Each start makes the sandbox
and the process anew; each exit releases the sandbox.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from netcore import Attachment, Conflict, InvalidConfig, NetcoreError, NotFound, PortBinding, names
from netcore.controller import Controller

from runtime import portspec
from runtime.engine import cgroups, events, files, health, launch, manage, monitors, netconfig, netmode, pause, process, runconfig
from runtime.engine.logpump import LogPump
from runtime.engine.config import ipv4
from runtime.engine.exitwatch import ExitWatcher
from runtime.engine.restart import Backoff, RestartPolicy
from runtime.engine.rootfs import HOST_IMAGE, Image, RootView, resolve_user
from runtime.engine.stdio import Stdio

__all__ = ["Containers"]

log = logging.getLogger("netcore.containers")
CONTAINER = "container"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEEP_LOG = 60.0  # seconds an auto-removed container's files wait for its client (run --rm reads the log after the exit)
ACTIVE = ("running", "restarting")  # what ``ps`` lists without -a, and what ``rm`` refuses without -f
_ADJ = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "sharp", "vivid", "witty", "zen")
_NOUN = ("babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class CommandFailed(InvalidConfig):
    """The container's command could not be run (not found: 127, not runnable: 126): the
    container stays (Docker's), and the API says which code the CLI exits with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


class HostOnly:
    """The image resolver until an image store is wired in: the built-in ``host`` image only."""

    def resolve(self, ref: str) -> Image:
        if ref in ("host", "host:latest"):
            return HOST_IMAGE
        raise NotFound(f"No such image: {ref}")


class Containers:
    def __init__(self, controller: Controller, root: str, resolv_conf: str = "/etc/resolv.conf",
                 images: Any = None, volumes: Any = None, hide: tuple[str, ...] = ("/run/netcore",)) -> None:
        """``images``: ``resolve(ref) -> rootfs.Image`` (the image store); ``volumes``:
        ``mountpoint(name) -> str`` (named volumes); ``hide``: host paths that host-image
        containers must not see besides the engine's root (its socket's dir)."""
        self.controller = controller
        self.images = images or HostOnly()
        self.volumes = volumes
        self.hide = [os.path.abspath(root), *hide]
        self.launcher = process.Launcher(os.path.join(root, "launcher"))
        self.resolv_conf = resolv_conf  # the engine's: the host's, or made from ``daemon --dns``
        self.store = controller.store
        self.dir = os.path.join(root, "containers")
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every state change
        self.output = threading.Condition()  # notified when a terminal wrote to a log, and on exits
        self._exited: dict[str, threading.Event] = {}
        self._codes: dict[str, int | None] = {}
        self._runs: dict[str, list[int]] = {}  # id -> [starts, exits, failed starts] during this engine's life
        self._started: dict[str, float] = {}  # id -> time of the current run's start (back-off)
        self._stdio: dict[str, Stdio] = {}  # id -> stdin / terminal of the current run (-i, -t)
        self._timers: dict[str, threading.Timer] = {}  # id -> pending restart
        self._backoff: dict[str, Backoff] = {}
        self._kept: dict[str, float] = {}  # auto-removed containers whose files wait for the client: id -> until
        self.logs = LogPump(self.notify_output)  # stdout and stderr of containers without a terminal -> their logs
        self.watcher = ExitWatcher(self._on_exit)
        self.health = health.HealthMonitor(self._exec_argv, self._health_changed)
        self.events = events.EventBus()  # what ``netcore events`` streams: each operation publishes here

    # ------------------------------------------------------------ lookups ----

    def list(self, all: bool = False) -> list[dict[str, Any]]:
        out = self.store.list(CONTAINER)
        if not all:
            out = [c for c in out if c["state"] in ACTIVE]
        return sorted(out, key=lambda c: c["created"], reverse=True)

    def get(self, ref: str) -> dict[str, Any]:
        """A container by name, id, or unique id prefix."""
        rec = self.store.find(CONTAINER, ref) or self.store.get(CONTAINER, ref)
        if rec is None and len(ref) >= 3:
            hits = [c for c in self.store.list(CONTAINER) if c["id"].startswith(ref)]
            if len(hits) == 1:
                rec = hits[0]
        if rec is None:
            raise NotFound(f"No such container: {ref}")
        return rec

    def state_dir(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def log_path(self, ref: str) -> tuple[str, str]:
        """The id and log file of a container, or of one auto-removed a moment ago: ``run --rm``'s
        client follows the log after the run request, and a short command may be gone by then."""
        with self.lock:
            if ref in self._kept:
                return ref, process.log_path(self.state_dir(ref))
        cid = self.get(ref)["id"]
        return cid, process.log_path(self.state_dir(cid))

    def runs(self, cid: str) -> tuple[int, int, int]:
        """(starts, exits, failed starts) of ``cid`` since this engine started: an attached
        client follows one run, and gives up on it if its start fails."""
        starts, exits, failed = self._runs.get(cid, (0, 0, 0))
        return starts, exits, failed

    def gone(self, cid: str) -> bool:
        return self.store.get(CONTAINER, cid) is None

    def stdio(self, cid: str) -> Stdio | None:
        """The current run's stdin / terminal (None: none, or not running)."""
        return self._stdio.get(cid)

    def notify_output(self) -> None:
        with self.output:
            self.output.notify_all()

    # ------------------------------------------------------------ create / run -

    def create(
        self,
        argv: list[str] | None = None,
        name: str | None = None,
        networks: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        hostname: str | None = None,
        auto_remove: bool = False,
        exposed_ports: dict[str, Any] | None = None,
        port_bindings: dict[str, list[dict[str, str]]] | None = None,
        publish_all: bool = False,
        dns: list[str] | None = None,
        labels: dict[str, str] | None = None,
        healthcheck: dict[str, Any] | None = None,
        tty: bool = False,
        open_stdin: bool = False,
        stdin_once: bool = False,
        restart_policy: dict[str, Any] | None = None,
        image: str | Image = "host",
        entrypoint: list[str] | None = None,
        user: str | None = None,
        mounts: list[dict[str, Any]] | None = None,
        read_only: bool = False,
        cap_add: list[str] | None = None,
        cap_drop: list[str] | None = None,
        privileged: bool = False,
        transient: bool = False,
        run_config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a container from ``image`` (state ``created``; Docker's rules for the image's
        config: see ``_apply_image``); nothing runs and no network is joined yet.
        ``transient``: ``run``'s, until its process runs (an engine that dies before rolls the
        whole run back at its start). ``image`` may be an ``Image`` itself: a build's RUN runs
        the image-so-far, which is in no store. ``run_config``: ``runconfig.record``'s flags."""
        img = image if isinstance(image, Image) else self.images.resolve(image)
        extra = runconfig.record(run_config or {}, img.config)
        entry = [e for e in entrypoint if e] if entrypoint is not None else list((img.config or {}).get("Entrypoint") or [])
        argv, env, workdir, user = _apply_image(img, argv, entrypoint, env, workdir, user)
        try:
            caps = launch.capabilities(cap_add or (), cap_drop or (), privileged)
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None
        mount_recs = self._mounts(img, mounts or ())
        check = health.HealthConfig.from_api(healthcheck)
        labels = _labels(labels)
        policy = RestartPolicy.of(restart_policy)
        if auto_remove and policy.restarts:
            raise InvalidConfig("can't create 'AutoRemove' container with restart policy")
        cid = names.new_id()
        name = name or self._random_name()
        if not names.valid_object_name(name):
            raise InvalidConfig(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        joined = netmode.target(networks)  # --network container:NAME: no networks of its own
        if joined is not None:
            netmode.check_create(networks[0], hostname, dns, exposed_ports, port_bindings, publish_all)
            joined = netmode.PREFIX + self.get(joined)["id"]
        specs = [] if joined else [_network_spec(n) for n in networks or [{"name": "bridge"}]]
        for spec in specs:
            self.controller.network(spec["name"])  # an unknown network fails here, as in Docker's create
        exposed = {**(img.config.get("ExposedPorts") or {}), **(exposed_ports or {})}
        bindings = dict(port_bindings or {})
        ports = _requested_ports(exposed, bindings, publish_all)
        dns = [ipv4(s, "--dns") for s in dns or ()]
        rec: dict[str, Any] = {
            "id": cid,
            "name": name,
            "hostname": hostname or cid[:12],  # Docker's default: the short id
            "argv": list(argv),
            "entrypoint": entry,  # inspect's Config.Entrypoint; the rest of argv is its Config.Cmd
            "binds": _binds(mounts or ()),
            "env": dict(env or {}),
            "workdir": workdir,
            "networks": [s["name"] for s in specs],
            "network_specs": specs,
            **({"network_mode": joined} if joined else {}),
            "auto_remove": auto_remove,
            "exposed_ports": {**exposed, **{f"{p.container_port}/{p.proto}": {} for p in ports}},
            "port_bindings": bindings,
            "publish_all": publish_all,
            "dns": dns,
            "labels": labels,
            "healthcheck": healthcheck if check else None,
            "tty": bool(tty),
            "open_stdin": bool(open_stdin),
            "stdin_once": bool(stdin_once),
            "restart_policy": policy.api(),
            "restart_count": 0,
            "manually_stopped": False,
            "image": image if isinstance(image, str) else img.id,
            "image_id": img.id,
            "user": user or "",
            "mounts": mount_recs,
            "read_only": bool(read_only),
            "caps": sorted(caps),
            "cap_add": list(cap_add or []),
            "cap_drop": list(cap_drop or []),
            "privileged": bool(privileged),
            "created": _now(),
            "state": "created",
            "exit_code": None,
            "error": "",
            "started_at": None,
            "finished_at": None,
            "process": None,
            **extra,
        }
        if transient:
            rec["transient"] = True
        with self.lock:
            self.store.put(CONTAINER, cid, rec, name=name, create=True)  # a duplicate name fails here, before any change
            self._runs[cid] = [0, 0, 0]
        self._publish(rec, "create")
        return rec

    def run(self, argv: list[str] | None = None, **options: Any) -> dict[str, Any]:
        """Create and start a container; everything is undone if any part fails."""
        rec = self.create(argv, transient=True, **options)
        image = options.get("image")
        try:
            pause.point("run.record")
            with self.lock:  # an Image of no store (a build's RUN) is handed on as it is
                self._start(rec, manual=True, img=image if isinstance(image, Image) else None)
            return rec
        except BaseException as exc:
            with self.lock:
                if isinstance(exc, CommandFailed) and not rec["auto_remove"]:
                    rec.pop("transient", None)  # Docker's: it stays Created, the code and error in its state
                    self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
                    raise
                self.store.delete(CONTAINER, rec["id"])  # (--rm: Docker's daemon removes it too)
                self._runs.pop(rec["id"], None)
                shutil.rmtree(self.state_dir(rec["id"]), ignore_errors=True)
                self._remove_anonymous_volumes(rec)  # made for this run: they go with it
            raise

    # ------------------------------------------------------------ start --------

    def start(self, ref: str) -> dict[str, Any]:
        """Start a created or exited container (Docker's ``start``: quiet if it runs already)."""
        with self.lock:
            rec = self.get(ref)
            if rec["state"] == "running":
                return rec
            if rec["state"] == "removing":
                raise Conflict(f"container {rec['name']} is marked for removal and cannot be started")
            self._cancel_restart(rec["id"])
            try:
                self._start(rec, manual=True)
            except CommandFailed:
                self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
                raise
            return rec

    def _start(self, rec: dict[str, Any], manual: bool, img: Image | None = None) -> None:
        """Sandbox, files, volumes, stdio, process; all undone if one fails. The caller holds the lock."""
        cid, name = rec["id"], rec["name"]
        sdir = self.state_dir(cid)
        specs = rec.get("network_specs") or [{"name": n} for n in rec["networks"]]
        attachments = [Attachment(n["name"], n.get("ip") or None, tuple(n.get("aliases") or ()), int(n.get("gw_priority") or 0),
                                  mac=rec.get("mac_address") if i == 0 else None) for i, n in enumerate(specs)]
        ports = _requested_ports(rec.get("exposed_ports") or {}, rec.get("port_bindings") or {}, rec.get("publish_all", False))
        stdio = None
        try:
            os.makedirs(sdir, exist_ok=True)
            if rec.get("network_mode"):  # another container's sandbox (netmode)
                owner = netmode.resolve(self, rec)
                sandbox = self.controller.sandbox(owner["id"])
                if sandbox is None:
                    raise Conflict(f"cannot join network of a non running container: {owner['id']}")
                host_ns = sandbox.netns_path is None
                hostname = os.uname().nodename if host_ns else owner["hostname"]
                netmode.link_files(self.state_dir(owner["id"]), sdir)
            else:
                sandbox = self.controller.setup_sandbox(cid, name, attachments, hostname=rec["hostname"], dns_servers=rec["dns"], ports=ports)
                host_ns = sandbox.netns_path is None
                hostname = os.uname().nodename if host_ns else rec["hostname"]
                self._write_files({**rec, "hostname": hostname}, sdir)
            pause.point("run.sandbox")
            img = img or self._image(rec)
            self._make_volumes(img, rec["mounts"])
            pause.point("run.files")
            spec = self._spec({**rec, "hostname": hostname}, img, sandbox.netns_path, host_ns)
            if rec.get("tty") or rec.get("open_stdin"):
                stdio = Stdio(bool(rec.get("tty")), bool(rec.get("open_stdin")), process.log_path(sdir), self.notify_output)
            if not rec.get("tty"):
                fifos = self.logs.open(cid, sdir, process.log_path(sdir))
                spec = replace(spec, stdio=(subprocess.DEVNULL, *fifos), fifos=True, drain=lambda: self.logs.drain(cid))
            if stdio is not None:
                spec = replace(spec, **stdio.prepare(*spec.stdio[1:]) if spec.stdio else stdio.prepare())
            if rec.get("memory") or rec.get("nano_cpus"):
                spec = replace(spec, cgroups=tuple(cgroups.prepare(cid, rec.get("memory"), rec.get("nano_cpus"))))
            self._exited[cid] = threading.Event()
            try:
                info = self.launcher.start(spec)
            finally:
                for fd in spec.stdio[1:] if spec.fifos and spec.stdio else ():
                    os.close(fd)  # the container holds them now
            pause.point("run.process")
        except BaseException as exc:
            self._exited.pop(cid, None)
            self.logs.close(cid, sdir)
            if stdio is not None:
                stdio.close()
            self._runs.setdefault(cid, [0, 0, 0])[2] += 1  # waiters and attached clients of this run give up
            self.changed.notify_all()
            self.notify_output()
            self.controller.teardown_sandbox(cid)
            cgroups.remove(cid, rec.get("memory"), rec.get("nano_cpus"))
            if isinstance(exc, cgroups.Unsupported):
                raise InvalidConfig(str(exc)) from None
            if isinstance(exc, process.CommandError):  # Docker: the container stays, with the code
                rec.update(exit_code=exc.code, error=str(exc))
                raise CommandFailed(str(exc), exc.code) from None
            if isinstance(exc, process.ProcessError):
                raise InvalidConfig(str(exc)) from None
            raise
        if stdio is not None:
            stdio.started()
            self._stdio[cid] = stdio
        rec.update(state="running", paused=False, started_at=_now(), finished_at=None, exit_code=0, error="", oom_killed=False, process=_info_dict(info),
                   seccomp="" if rec["privileged"] else self.launcher.seccomp_program(frozenset(rec["caps"])))  # for exec
        rec.pop("transient", None)
        if manual:
            rec.update(restart_count=0, manually_stopped=False)
            self._backoff.pop(cid, None)
        self._started[cid] = info.started_at
        self._runs.setdefault(cid, [0, 0, 0])[0] += 1
        self.store.put(CONTAINER, cid, rec, name=name)
        self.watcher.watch(cid, info, sdir)
        check = health.HealthConfig.from_api(rec.get("healthcheck"))
        if check is not None:
            self.health.watch(cid, check)
        pause.point("run.running")
        self._publish_networks(rec, "connect")
        self._publish(rec, "start")
        self.changed.notify_all()

    def _image(self, rec: dict[str, Any]) -> Image:
        """The image a container was created from: by id (a tag may have moved since), else by name."""
        try:
            return self.images.resolve(rec.get("image_id") or "host")
        except NotFound:
            return self.images.resolve(rec.get("image") or "host")

    def _spec(self, rec: dict[str, Any], img: Image, netns_path: str | None, host_ns: bool) -> process.ProcessSpec:
        """The launcher's spec from the record: the command checked against the root it will
        run in, the user resolved from that root's /etc/passwd."""
        cid, sdir = rec["id"], self.state_dir(rec["id"])
        upper = process.upper_dirs(sdir)[0]
        view = RootView(("/",) if img.is_host else (upper, *reversed(img.layers)))
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": rec["hostname"], **rec["env"]}
        workdir = rec["workdir"] or "/"
        try:
            user = resolve_user(view, rec["user"]) if rec["user"] else None
        except ValueError as exc:  # a user the image does not know
            raise InvalidConfig(str(exc)) from None
        if "HOME" not in rec["env"]:  # Docker's: the user's passwd entry, else /
            env["HOME"] = (user or resolve_user(view, "0")).home
        bind = {"/etc/resolv.conf": f"{sdir}/resolv.conf"}
        if not host_ns:
            bind.update({"/etc/hosts": f"{sdir}/hosts", "/etc/hostname": f"{sdir}/hostname"})
        mounts = [process.Mount(target=m["Destination"], type=m["Type"] if m["Type"] == "tmpfs" else "bind",
                                source=m["Source"], readonly=not m["RW"], size=m.get("SizeBytes"), mode=m.get("TmpfsMode"))
                  for m in rec["mounts"]]
        return process.ProcessSpec(
            container_id=cid, argv=list(rec["argv"]), env=env, workdir=workdir,
            hostname=None if host_ns else rec["hostname"], netns_path=netns_path, bind_files=bind,
            state_dir=sdir, layers=None if img.is_host else tuple(img.layers), read_only=rec["read_only"],
            mounts=mounts, user=user, caps=frozenset(rec["caps"]), privileged=rec["privileged"],
            hide=tuple(self.hide) if img.is_host else (), init=runconfig.init_binary() if rec.get("init") else None,
        )

    def _mounts(self, img: Image, mounts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The mounts asked for, and an anonymous volume for each VOLUME of the image that none covers."""
        recs = [self._mount(m) for m in mounts]
        taken = {m["Destination"] for m in recs}
        return recs + [self._mount({"Type": "volume", "Target": p}) for p in img.config.get("Volumes") or {} if os.path.normpath(p) not in taken]

    def _make_volumes(self, img: Image, recs: list[dict[str, Any]]) -> None:
        """Make the volumes the mounts name that do not exist yet; a new one starts with the
        image's content at its path (Docker's copy-up)."""
        for m in recs:
            if m["Type"] == "volume" and self.volumes is not None and self.volumes.ensure(m["Name"]):
                if not img.is_host:
                    self.volumes.populate(m["Name"], img.layers, m["Destination"])

    def _mount(self, m: dict[str, Any]) -> dict[str, Any]:
        """One mount in Docker's API shape (``Type``, ``Source``, ``Target``, ``ReadOnly``,
        ``TmpfsOptions``) checked and turned into the record's (inspect's ``Mounts``) shape."""
        kind, src, dst = m.get("Type") or "bind", m.get("Source") or "", m.get("Target") or m.get("Destination") or ""
        ro = bool(m.get("ReadOnly"))
        if not isinstance(dst, str) or not dst.startswith("/"):
            raise InvalidConfig(f"invalid mount config for type \"{kind}\": invalid mount path: '{dst}' mount path must be absolute")
        dst = os.path.normpath(dst)
        if dst == "/":
            raise InvalidConfig("invalid mount config: invalid specification: destination can't be '/'")
        if kind == "bind":
            if not isinstance(src, str) or not src.startswith("/"):
                raise InvalidConfig(f'create {src}: "{src}" includes invalid characters for a local volume name, '
                                    'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path')
            if not os.path.exists(src):
                raise InvalidConfig(f"invalid mount config for type \"bind\": bind source path does not exist: {src}")
            return {"Type": "bind", "Source": src, "Destination": dst, "Mode": "ro" if ro else "", "RW": not ro, "Propagation": "rprivate"}
        if kind == "tmpfs":
            opts = m.get("TmpfsOptions") or {}
            return {"Type": "tmpfs", "Source": "", "Destination": dst, "Mode": "", "RW": not ro,
                    "SizeBytes": opts.get("SizeBytes"), "TmpfsMode": opts.get("Mode")}
        if kind == "volume":
            if self.volumes is None:
                raise InvalidConfig("named and anonymous volumes need the volume store")
            name = src or names.new_id()
            path = self.volumes.mountpoint(name)
            return {"Type": "volume", "Name": name, "Source": path, "Destination": dst, "Driver": "local",
                    "Mode": "ro" if ro else "", "RW": not ro, "Propagation": ""}
        raise InvalidConfig(f"invalid mount config: mount type unknown: {kind!r}")

    def _write_files(self, rec: dict[str, Any], sdir: str) -> None:
        """hosts and hostname follow the networks; resolv.conf switches to the embedded DNS
        once the container is on a user-defined network (and stays so, as Docker's does)."""
        sandbox = self.controller.sandbox(rec["id"])
        endpoints = self.controller.sandbox_endpoints(sandbox) if sandbox else []
        addresses = [e.ip for e in endpoints if e.ip]
        gateway = self.controller.network("bridge").gateway if rec.get("extra_hosts") else None
        files.write_in_place(f"{sdir}/hosts", files.hosts(rec["hostname"], rec["name"], addresses, runconfig.hosts_entries(rec, gateway)))
        files.write_in_place(f"{sdir}/hostname", rec["hostname"] + "\n")
        embedded = bool(sandbox and sandbox.netns_path) and any(not self.controller.network(e.network_id).predefined for e in endpoints)
        path = f"{sdir}/resolv.conf"
        if not os.path.exists(path) or (embedded and not files.uses_embedded_dns(path)):
            files.write_in_place(path, files.resolv_conf(embedded=embedded, servers=rec.get("dns") or (), host_file=self.resolv_conf,
                                                         search=rec.get("dns_search") or (), options=rec.get("dns_options") or ()))

    def _random_name(self) -> str:
        for _ in range(100):
            name = f"{random.choice(_ADJ)}_{random.choice(_NOUN)}"
            if self.store.find(CONTAINER, name) is None:
                return name
        return f"c_{names.new_id()[:8]}"

    # ------------------------------------------------------------ exit ---------

    def _on_exit(self, cid: str, code: int | None) -> None:
        """Called by the watcher once per run: record the code, free the network, apply the
        restart policy."""
        stdio = self._stdio.pop(cid, None)
        if stdio is not None:  # the terminal's last words reach the log before the run counts as over
            stdio.drain()
            stdio.close()
        self.logs.close(cid, self.state_dir(cid))  # and so do the last lines in the FIFOs
        with self.lock:
            rec = self.store.get(CONTAINER, cid)
            if rec is None:
                return
            try:
                self.controller.teardown_sandbox(cid)
            except NetcoreError as exc:
                log.warning("container %s: %s", rec["name"], exc)
            self.health.unwatch(cid)
            rec["oom_killed"] = cgroups.oom_killed(cid, rec.get("memory"))
            cgroups.remove(cid, rec.get("memory"), rec.get("nano_cpus"))
            rec.update(state="exited", exit_code=code, finished_at=_now(), paused=False)
            self._publish(rec, "die", exitCode=code if code is not None else 0)
            self._publish_networks(rec, "disconnect")
            self._codes[cid] = code
            self._runs.setdefault(cid, [0, 0, 0])[1] += 1
            event = self._exited.pop(cid, None)
            if rec["auto_remove"]:
                self._remove_record(rec, keep_files=True)
                self._remove_anonymous_volumes(rec)
                self._publish(rec, "destroy")
            else:
                self._plan_restart(rec, code)
                self.store.put(CONTAINER, cid, rec, name=rec["name"])
            self.changed.notify_all()
        if event is not None:
            event.set()
        self.notify_output()

    def _plan_restart(self, rec: dict[str, Any], code: int | None) -> None:
        """``restarting`` and a timer if the policy says so (lock held)."""
        policy = RestartPolicy.of(rec.get("restart_policy"))
        if not policy.should_restart(code, rec.get("restart_count", 0), rec.get("manually_stopped", False)):
            return
        ran = time.time() - self._started.get(rec["id"], time.time())
        delay = self._backoff.setdefault(rec["id"], Backoff()).next(ran)
        rec.update(state="restarting", restart_count=rec.get("restart_count", 0) + 1)
        self._schedule_restart(rec["id"], delay)

    def _schedule_restart(self, cid: str, delay: float) -> None:
        self._cancel_restart(cid)
        timer = threading.Timer(delay, self._restart_due, (cid,))
        timer.daemon = True
        self._timers[cid] = timer
        timer.start()

    def _cancel_restart(self, cid: str) -> None:
        timer = self._timers.pop(cid, None)
        if timer is not None:
            timer.cancel()

    def _restart_due(self, cid: str, manual: bool = False) -> None:
        with self.lock:
            self._timers.pop(cid, None)
            rec = self.store.get(CONTAINER, cid)
            if rec is None or rec["state"] != "restarting":
                return
            try:
                self._start(rec, manual=manual)
            except Exception as exc:  # counts as a failed run: the policy decides again
                log.warning("restarting container %s: %s", rec["name"], exc)
                rec.update(state="exited", exit_code=128, error=str(exc), finished_at=_now())
                self._plan_restart(rec, 128)
                self.store.put(CONTAINER, cid, rec, name=rec["name"])
                self.changed.notify_all()

    def exit_event(self, cid: str) -> threading.Event | None:
        """Set when the running container ``cid`` exits (None: it is not running)."""
        return self._exited.get(cid)

    def wait(self, ref: str, timeout: float | None = None) -> int | None:
        """Block until the container is not running (nor restarting); its exit code (also right
        after an auto-remove, whose files go now: the client that waits has read the log)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            if ref in self._codes and self.store.get(CONTAINER, ref) is None:
                cid = ref
            else:
                cid = self.get(ref)["id"]
            while (rec := self.store.get(CONTAINER, cid)) is not None and rec["state"] in ACTIVE:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.changed.wait(left)
            code = self._codes.get(cid) if rec is None or cid in self._codes else rec["exit_code"]
            if self._kept.pop(cid, None) is not None:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
        return code

    def next_exit(self, ref: str) -> Callable[[], int | None]:
        """Register now for the container's next exit; the returned call blocks until it and
        returns its code (``wait --condition next-exit``: ``run`` and ``start -a`` register
        before they start the container, so no exit is missed)."""
        with self.lock:
            cid = self.get(ref)["id"]
            _, exits, failed = self._runs.setdefault(cid, [0, 0, 0])

        def result() -> int | None:
            with self.lock:
                while (runs := self.runs(cid))[1] <= exits:
                    if runs[2] > failed or self.store.get(CONTAINER, cid) is None:
                        return None  # its start failed, or it was removed without running
                    self.changed.wait(1.0)
                return self._codes.get(cid)  # an auto-removed one's files stay for its attached client until KEEP_LOG

        return result

    # ------------------------------------------------------------ stop / kill --

    def stop(self, ref: str, timeout: float | None = None) -> dict[str, Any]:
        """The stop signal (SIGTERM, ``--stop-signal``, the image's STOPSIGNAL), then SIGKILL
        after ``timeout`` (None: ``--stop-timeout``, else 10 s); a restart policy does not
        bring it back."""
        with self.lock:
            rec = self.get(ref)
            info = self._halt(rec)
        if info is not None:
            process.stop(info, timeout=runconfig.stop_timeout(rec, timeout), sig=runconfig.stop_signal(rec))
            self.wait(rec["id"], timeout=5.0)
            self._publish(rec, "stop")
        return rec

    def kill(self, ref: str, sig: int = signal.SIGKILL) -> dict[str, Any]:
        """Send ``sig`` to the container's pid 1 (Docker's ``kill``: no restart afterwards)."""
        with self.lock:
            rec = self.get(ref)
            if rec["state"] not in ACTIVE:
                raise Conflict(f"Cannot kill container: {ref}: Container {rec['id']} is not running")
            info = self._halt(rec)
        if info is not None:
            try:
                process.kill(info, sig)
            except process.NotRunningError:
                raise Conflict(f"Cannot kill container: {ref}: Container {rec['id']} is not running") from None
            self._publish(rec, "kill", signal=int(sig))
            if sig == signal.SIGKILL:
                self.wait(rec["id"], timeout=5.0)
        return rec

    def _halt(self, rec: dict[str, Any]) -> process.ProcessInfo | None:
        """Mark ``rec`` stopped by hand (lock held): a pending restart is cancelled; the
        process to signal if it runs."""
        if rec["state"] not in ACTIVE:
            return None
        self._cancel_restart(rec["id"])
        manage.thaw_for_signal(rec)  # a paused container takes the signal, as Docker's does
        rec["manually_stopped"] = True
        if rec["state"] == "restarting":
            rec["state"] = "exited"
        self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
        self.changed.notify_all()
        return _info(rec) if rec["state"] == "running" else None

    def restart(self, ref: str, timeout: float | None = None) -> dict[str, Any]:
        """Stop (if running) and start again."""
        self.stop(ref, timeout)
        rec = self.start(ref)
        self._publish(rec, "restart")
        return rec

    # ------------------------------------------------------------ rm -----------

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> dict[str, Any]:
        with self.lock:
            rec = self.get(ref)
            if rec["state"] in ACTIVE and not force:
                if rec.get("paused"):
                    raise Conflict(f"cannot remove container {rec['name']}: container is paused and must be unpaused first")
                if rec["state"] == "restarting":
                    raise Conflict(
                        f"You cannot remove a restarting container {rec['id']}. Stop the container before attempting removal or force remove"
                    )
                raise Conflict(
                    f"cannot remove container {rec['name']}: container is running: stop the container before removing or force remove"
                )
            info = self._halt(rec)
        if info is not None:
            try:
                self._publish(rec, "kill", signal=int(signal.SIGKILL))  # Docker's rm -f: kill, die, destroy (in order)
                process.kill(info)
            except process.NotRunningError:
                pass
            pause.point("rm.killed")
            self.wait(rec["id"], timeout=5.0)
            pause.point("rm.exited")
        with self.lock:
            rec = self.store.get(CONTAINER, rec["id"])
            if rec is not None:
                rec["state"] = "removing"
                self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
                self._remove_record(rec)
                if volumes:
                    self._remove_anonymous_volumes(rec)
                self.changed.notify_all()
                self._publish(rec, "destroy")
        return rec or {}

    def _remove_anonymous_volumes(self, rec: dict[str, Any]) -> None:
        """``rm -v`` and ``--rm``: the container's anonymous volumes (``-v /path``, the image's
        VOLUMEs) go with it, as in Docker; named volumes stay."""
        if self.volumes is not None:
            self.volumes.remove_anonymous(rec.get("mounts") or ())

    def _remove_record(self, rec: dict[str, Any], keep_files: bool = False) -> None:
        """The container goes; ``keep_files``: its files stay for its client (``log_path``,
        ``wait``) for up to KEEP_LOG seconds."""
        cid = rec["id"]
        self.logs.close(cid)
        self.watcher.unwatch(cid)
        self.health.forget(cid)
        self._cancel_restart(cid)
        self.controller.teardown_sandbox(cid)
        pause.point("rm.sandbox")
        self.store.delete(CONTAINER, cid)
        pause.point("rm.record")
        for table in (self._started, self._backoff):
            table.pop(cid, None)
        now = time.monotonic()
        for old, until in list(self._kept.items()):
            if until <= now:
                del self._kept[old]
                self._codes.pop(old, None)
                self._runs.pop(old, None)
                shutil.rmtree(self.state_dir(old), ignore_errors=True)
        if keep_files:
            self._kept[cid] = now + KEEP_LOG
        else:
            self._runs.pop(cid, None)
            self._codes.pop(cid, None)
            shutil.rmtree(self.state_dir(cid), ignore_errors=True)

    # ------------------------------------------------------------ networks -----

    def connect(
        self, network: str, ref: str, ip: str | None = None, aliases: list[str] | None = None, gw_priority: int = 0
    ) -> None:
        rec = self.get(ref)
        netmode.refuse_network_change(rec)
        if rec["state"] != "running":  # Docker's: a stopped container joins it at its next start
            with self.lock:
                netconfig.add_network(self.controller, rec, network, ip, list(aliases or ()), gw_priority)
                self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            return
        with self.lock:
            ep = self.controller.connect(network, rec["id"], ip=ip, aliases=aliases or (), gw_priority=gw_priority)
            rec["networks"].append(ep.network_id)
            rec.setdefault("network_specs", []).append(
                {"name": ep.network_id, "ip": ip, "aliases": list(aliases or ()), "gw_priority": gw_priority}
            )
            self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            self._write_files(rec, self.state_dir(rec["id"]))
        self._publish_network(ep.network_id, "connect", rec["id"])

    def disconnect(self, network: str, ref: str) -> None:
        rec = self.get(ref)
        netmode.refuse_network_change(rec)
        if rec["state"] != "running":  # Docker's: a stopped container leaves the network in its config
            with self.lock:
                netconfig.forget_network(self.controller, rec, network)
                self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            return
        with self.lock:
            ep = self.controller.disconnect(network, rec["id"])
            gone = (network, ep.network_id)
            rec["networks"] = [n for n in rec["networks"] if n not in gone]
            rec["network_specs"] = [s for s in rec.get("network_specs", []) if s["name"] not in gone]
            self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            self._write_files(rec, self.state_dir(rec["id"]))
        self._publish_network(ep.network_id, "disconnect", rec["id"])

    def _publish(self, rec: dict[str, Any], action: str, **extra: Any) -> None:
        attrs = {**(rec.get("labels") or {}), "image": rec.get("image") or "host", "name": rec["name"], **extra}
        self.events.publish(CONTAINER, action, rec["id"], **attrs)

    def attached(self, rec: dict[str, Any]) -> None:
        """A client attached (runtime.engine.attach): Docker's ``attach`` event."""
        self._publish(rec, "attach")

    def _health_changed(self, cid: str, status: str) -> None:
        """The healthcheck's status changed: Docker's ``health_status: healthy|unhealthy`` event."""
        rec = self.store.get(CONTAINER, cid)
        if rec is not None:
            self._publish(rec, f"health_status: {status}")

    def _publish_network(self, network: str, action: str, cid: str) -> None:
        try:
            net = self.controller.network(network)
        except NotFound:
            return
        self.events.publish("network", action, net.id, container=cid, name=net.name, type=net.driver)

    def _publish_networks(self, rec: dict[str, Any], action: str) -> None:
        for network in rec["networks"]:
            self._publish_network(network, action, rec["id"])

    # ------------------------------------------------------------ engine start -

    def adopt(self) -> None:
        """Make records, processes and sandboxes agree after a restart (the engine may have
        died at any point of a run, a start or an rm), then apply the restart policies:

        * a run that had not finished (record still ``transient``) is rolled back: its
          process, if it got one, is stopped, its sandbox and files go, its record goes;
        * a running container whose monitor is alive is adopted, with its terminal (see
          ``stdio``); one whose monitor is gone is marked exited at once (the watcher
          fires, and its restart policy decides);
        * every other monitor of this root that no running record owns is stopped
          (found from /proc: ``monitors.find``), so nothing runs that no command can reach;
        * a sandbox that no running container owns is torn down (its netns, its addresses);
        * a removal that had begun is finished; files of containers without a record go;
        * last, containers whose restart was pending start, and so do stopped ones whose
          policy says so when an engine starts (``restart.py``).
        """
        with self.lock:  # exits the watcher reports meanwhile, and restarts, wait until all agrees
            found = monitors.find(self.dir)
            adopted: set[tuple[int, int]] = set()
            due: list[tuple[str, bool]] = []  # (id, manual): restarts once everything agrees
            for rec in self.store.list(CONTAINER):
                cid, state = rec["id"], rec["state"]
                if rec.get("transient"):
                    log.info("container %s: its run did not finish; rolling it back", rec["name"])
                    self._stop_all(found.pop(cid, []))
                    try:
                        self.controller.teardown_sandbox(cid)
                    except NetcoreError as exc:
                        log.warning("container %s: %s", rec["name"], exc)
                    self.store.delete(CONTAINER, cid)
                    continue
                self._runs[cid] = [1 if state == "running" else 0, 0, 0]
                if state == "running" and rec.get("process"):
                    info = _info(rec)
                    adopted.add((info.monitor_pid, info.monitor_start))
                    self._started[cid] = info.started_at
                    if rec.get("tty") or rec.get("open_stdin"):
                        stdio = Stdio(bool(rec.get("tty")), bool(rec.get("open_stdin")), process.log_path(self.state_dir(cid)), self.notify_output)
                        if stdio.adopt(info):
                            self._stdio[cid] = stdio
                    if not rec.get("tty"):
                        self.logs.adopt(cid, self.state_dir(cid), process.log_path(self.state_dir(cid)))
                    self._exited[cid] = threading.Event()
                    self.watcher.watch(cid, info, self.state_dir(cid))  # fires at once if it exited meanwhile
                    check = health.HealthConfig.from_api(rec.get("healthcheck"))
                    if check is not None:
                        self.health.watch(cid, check)
                elif state == "removing":
                    self._remove_record(rec)
                elif state == "restarting":
                    due.append((cid, False))
                elif state == "exited" and rec.get("started_at"):
                    policy = RestartPolicy.of(rec.get("restart_policy"))
                    if policy.should_start_with_engine(rec["exit_code"], rec.get("restart_count", 0), rec.get("manually_stopped", False)):
                        rec["state"] = "restarting"
                        self.store.put(CONTAINER, cid, rec, name=rec["name"])
                        due.append((cid, True))
            for mons in found.values():
                self._stop_all([m for m in mons if (m.pid, m.start) not in adopted])
            running = {c["id"] for c in self.store.list(CONTAINER) if c["state"] == "running"}
            for sid in self.controller.sandbox_ids():
                sandbox = self.controller.sandbox(sid)
                if sid not in running and sandbox is not None and not sandbox.external:  # external: a CNI runtime's
                    try:
                        self.controller.teardown_sandbox(sid)
                    except NetcoreError as exc:
                        log.warning("sandbox %s: %s", sid[:12], exc)
            for cid in os.listdir(self.dir):
                if self.store.get(CONTAINER, cid) is None:
                    shutil.rmtree(self.state_dir(cid), ignore_errors=True)
            for cid, manual in due:
                timer = threading.Timer(0, self._restart_due, (cid, manual))
                timer.daemon = True
                self._timers[cid] = timer
                timer.start()

    @staticmethod
    def _stop_all(mons: list[monitors.Monitor]) -> None:
        for mon in mons:
            log.info("container %s: stopping its process %d, which no record tracks", mon.container_id[:12], mon.pid)
            if not monitors.stop(mon):
                log.warning("container %s: process %d did not stop", mon.container_id[:12], mon.pid)

    def reset(self) -> None:
        """Every container goes, and every process of this root's containers with it,
        recorded or not (``system reset``)."""
        for rec in self.store.list(CONTAINER):
            try:
                self.remove(rec["id"], force=True)
            except NetcoreError as exc:
                log.warning("%s", exc)
        for mons in monitors.find(self.dir).values():
            self._stop_all(mons)

    def _exec_argv(self, cid: str, argv: list[str]) -> tuple[list[str], tuple[int, ...]]:
        """The host command running ``argv`` in the running container ``cid`` as ``exec`` runs it
        (pid 1's user, capabilities and seccomp: a healthcheck), and the descriptors it inherits
        (the exec helper and the seccomp program, opened by ``process.exec_argv``)."""
        rec = self.store.get(CONTAINER, cid)
        if rec is None or rec["state"] != "running":
            raise process.NotRunningError(f"container {cid[:12]} is not running")
        info = _info(rec)
        user = resolve_user(RootView((f"/proc/{info.pid}/root",)), rec["user"]) if rec.get("user") else None
        caps = frozenset(rec["caps"]) if rec.get("caps") is not None else None
        full = process.exec_argv(info, argv, user=user, caps=caps, seccomp_program=rec.get("seccomp") or None)
        helper = full.index("--") + 1  # nsenter ... -- /proc/self/fd/HELPER [-n -c CAPS] [-s PROG] ...
        fds = [int(full[helper].rsplit("/", 1)[1])]
        rest = full[helper + 1:]
        if rest[:1] == ["-n"]:
            rest = rest[3:]
        if rest[:1] == ["-s"]:
            fds.append(int(rest[1]))
        return full, tuple(fds)

    def close(self) -> None:
        self.health.close()
        with self.lock:
            for cid in list(self._timers):
                self._cancel_restart(cid)
        self.watcher.close()
        self.logs.shutdown()
        with self.lock:
            for cid in self._kept:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
            self._kept.clear()


def _labels(labels: Any) -> dict[str, str]:
    """``Labels``: a string-to-string object (compose finds its containers by them)."""
    if not labels:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidConfig("Labels must map strings to strings")
    return dict(labels)


def _network_spec(n: dict[str, Any]) -> dict[str, Any]:
    """A ``--network`` request as stored: every start joins the networks anew from it."""
    if not n.get("name"):
        raise InvalidConfig("a network needs a name")
    return {"name": n["name"], "ip": n.get("ip") or None, "aliases": list(n.get("aliases") or ()), "gw_priority": int(n.get("gw_priority") or 0)}


def _apply_image(img: Image, argv: list[str] | None, entrypoint: list[str] | None, env: dict[str, str] | None,
                 workdir: str | None, user: str | None) -> tuple[list[str], dict[str, str], str | None, str | None]:
    """Docker's rules: ``--entrypoint`` replaces the image's Entrypoint and drops its Cmd;
    a command replaces Cmd; the image's Env under ``-e``; ``-w`` and ``-u`` over WorkingDir
    and User."""
    cfg = img.config or {}
    if entrypoint is not None:
        entry, cmd = [e for e in entrypoint if e], list(argv or [])
    else:
        entry, cmd = list(cfg.get("Entrypoint") or []), list(argv or cfg.get("Cmd") or [])
    full = entry + cmd
    if not full:
        if img.is_host:
            raise InvalidConfig("no command given: netcore run [OPTIONS] -- COMMAND [ARG...]")
        raise InvalidConfig("no command specified")
    merged = dict(e.split("=", 1) for e in cfg.get("Env") or () if "=" in e)
    merged.update(env or {})
    return full, merged, workdir or cfg.get("WorkingDir") or None, user or cfg.get("User") or None


def _binds(mounts: Sequence[dict[str, Any]]) -> list[str]:
    """inspect's ``HostConfig.Binds``: the mounts with a source (a host path or a named volume),
    as ``-v`` writes them, ``SRC:DEST[:ro]``."""
    return [f"{m['Source']}:{m.get('Target') or m.get('Destination')}" + (":ro" if m.get("ReadOnly") else "")
            for m in mounts if (m.get("Type") or "bind") in ("bind", "volume") and m.get("Source")]


def _requested_ports(exposed: dict[str, Any], bindings: dict[str, list[dict[str, str]]], publish_all: bool) -> list[PortBinding]:
    """``-p`` bindings, plus with ``-P`` every exposed port not bound yet, on a free host port."""
    if publish_all:
        bindings = {**{key: [{"HostIp": "", "HostPort": ""}] for key in exposed}, **bindings}
    try:
        return [PortBinding(**d) for d in portspec.to_bindings(bindings)]
    except portspec.PortSpecError as exc:
        raise InvalidConfig(str(exc)) from None


def _info_dict(info: process.ProcessInfo) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(info)


def _info(rec: dict[str, Any]) -> process.ProcessInfo:
    return process.ProcessInfo(**rec["process"])
