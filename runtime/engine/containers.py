"""Container lifecycle in the engine: records, network sandbox, files, process.

A container's record lives in the engine's store (kind ``container``); its files
(hosts, resolv.conf, hostname, log, exit code) under ``<root>/containers/<id>/``.
Network setup goes through the core's public API (``Controller``) only.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Sequence
from typing import Any

from netcore import Attachment, Conflict, InvalidConfig, NetcoreError, NotFound, PortBinding, names
from netcore.controller import Controller

from runtime import portspec
from runtime.engine import files, launch, monitors, pause, process
from runtime.engine.config import ipv4
from runtime.engine.exitwatch import ExitWatcher
from runtime.engine.rootfs import HOST_IMAGE, Image, RootView, resolve_user

__all__ = ["Containers"]

log = logging.getLogger("netcore.containers")
CONTAINER = "container"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEEP_LOG = 60.0  # seconds an auto-removed container's files wait for its client (run --rm reads the log after the exit)
_ADJ = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "sharp", "vivid", "witty", "zen")
_NOUN = ("babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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
        self._exited: dict[str, threading.Event] = {}
        self._codes: dict[str, int | None] = {}
        self._kept: dict[str, float] = {}  # auto-removed containers whose files wait for the client: id -> until
        self.watcher = ExitWatcher(self._on_exit)

    # ------------------------------------------------------------ lookups ----

    def list(self, all: bool = False) -> list[dict[str, Any]]:
        out = self.store.list(CONTAINER)
        if not all:
            out = [c for c in out if c["state"] == "running"]
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

    # ------------------------------------------------------------ run ----------

    def run(
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
        image: str | Image = "host",
        entrypoint: list[str] | None = None,
        user: str | None = None,
        mounts: list[dict[str, Any]] | None = None,
        read_only: bool = False,
        cap_add: list[str] | None = None,
        cap_drop: list[str] | None = None,
        privileged: bool = False,
    ) -> dict[str, Any]:
        """Create and start a container from ``image`` (Docker's rules for its config: see
        ``_apply_image``); everything is undone if any part fails. ``image`` may be an
        ``Image`` itself: a build's RUN runs the image-so-far, which is in no store."""
        img = image if isinstance(image, Image) else self.images.resolve(image)
        argv, env, workdir, user = _apply_image(img, argv, entrypoint, env, workdir, user)
        try:
            caps = launch.capabilities(cap_add or (), cap_drop or (), privileged)
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None
        mount_recs = self._mounts(img, mounts or ())
        cid = names.new_id()
        name = name or self._random_name()
        if not names.valid_object_name(name):
            raise InvalidConfig(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        nets = networks or [{"name": "bridge"}]
        attachments = [
            Attachment(n["name"], n.get("ip") or None, tuple(n.get("aliases") or ()), int(n.get("gw_priority") or 0)) for n in nets
        ]
        exposed = {**(img.config.get("ExposedPorts") or {}), **(exposed_ports or {})}
        bindings = dict(port_bindings or {})
        ports = _requested_ports(exposed, bindings, publish_all)
        dns = [ipv4(s, "--dns") for s in dns or ()]
        rec: dict[str, Any] = {
            "id": cid,
            "name": name,
            "hostname": hostname or name,
            "argv": list(argv),
            "env": dict(env or {}),
            "workdir": workdir,
            "networks": [a.network for a in attachments],
            "auto_remove": auto_remove,
            "exposed_ports": {**exposed, **{f"{p.container_port}/{p.proto}": {} for p in ports}},
            "port_bindings": bindings,
            "publish_all": publish_all,
            "dns": dns,
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
            "started_at": None,
            "finished_at": None,
            "process": None,
            "transient": True,  # until the process runs: an engine that dies before rolls this run back at its start
        }
        made: list[str] = []  # volumes made for this container
        with self.lock:
            self.store.put(CONTAINER, cid, rec, name=name, create=True)  # a duplicate name fails here, before any change
            sdir = self.state_dir(cid)
            try:
                pause.point("run.record")
                os.makedirs(sdir)
                sandbox = self.controller.setup_sandbox(cid, name, attachments, hostname=rec["hostname"], dns_servers=dns, ports=ports)
                pause.point("run.sandbox")
                host_ns = sandbox.netns_path is None
                if host_ns:
                    rec["hostname"] = hostname or os.uname().nodename
                self._write_files(rec, sdir)
                self._make_volumes(img, mount_recs, made)
                pause.point("run.files")
                spec = self._spec(rec, img, sandbox.netns_path, host_ns)
                self._exited[cid] = threading.Event()
                info = self.launcher.start(spec)
                pause.point("run.process")
            except BaseException as exc:
                self._exited.pop(cid, None)
                try:
                    self.controller.teardown_sandbox(cid)
                finally:
                    self.store.delete(CONTAINER, cid)
                    shutil.rmtree(sdir, ignore_errors=True)
                    if self.volumes is not None:  # anonymous volumes made for this run go with it
                        self.volumes.remove_anonymous([m for m in mount_recs if m.get("Name") in made])
                if isinstance(exc, process.ProcessError):
                    raise InvalidConfig(str(exc)) from None
                raise
            rec.update(state="running", started_at=_now(), process=_info_dict(info),
                       seccomp="" if privileged else self.launcher.seccomp_program(caps))  # for exec
            rec.pop("transient", None)
            self.store.put(CONTAINER, cid, rec, name=name)
            self.watcher.watch(cid, info, sdir)
            pause.point("run.running")
        return rec

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
        if user is not None and "HOME" not in rec["env"]:
            env["HOME"] = user.home
        elif "HOME" not in rec["env"]:
            env["HOME"] = "/root"
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
            hide=tuple(self.hide) if img.is_host else (),
        )

    def _mounts(self, img: Image, mounts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The mounts asked for, and an anonymous volume for each VOLUME of the image that none covers."""
        recs = [self._mount(m) for m in mounts]
        taken = {m["Destination"] for m in recs}
        return recs + [self._mount({"Type": "volume", "Target": p}) for p in img.config.get("Volumes") or {} if os.path.normpath(p) not in taken]

    def _make_volumes(self, img: Image, recs: list[dict[str, Any]], made: list[str]) -> None:
        """Make the volumes the mounts name that do not exist yet (their names go to ``made``);
        a new one starts with the image's content at its path (Docker's copy-up)."""
        for m in recs:
            if m["Type"] == "volume" and self.volumes is not None and self.volumes.ensure(m["Name"]):
                made.append(m["Name"])
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
        files.write_in_place(f"{sdir}/hosts", files.hosts(rec["hostname"], rec["name"], addresses))
        files.write_in_place(f"{sdir}/hostname", rec["hostname"] + "\n")
        embedded = bool(sandbox and sandbox.netns_path) and any(not self.controller.network(e.network_id).predefined for e in endpoints)
        path = f"{sdir}/resolv.conf"
        if not os.path.exists(path) or (embedded and not files.uses_embedded_dns(path)):
            files.write_in_place(path, files.resolv_conf(embedded=embedded, servers=rec.get("dns") or (), host_file=self.resolv_conf))

    def _random_name(self) -> str:
        for _ in range(100):
            name = f"{random.choice(_ADJ)}_{random.choice(_NOUN)}"
            if self.store.find(CONTAINER, name) is None:
                return name
        return f"c_{names.new_id()[:8]}"

    # ------------------------------------------------------------ exit ---------

    def _on_exit(self, cid: str, code: int | None) -> None:
        """Called by the watcher once per container: record the code, free the network."""
        with self.lock:
            rec = self.store.get(CONTAINER, cid)
            if rec is None:
                return
            try:
                self.controller.teardown_sandbox(cid)
            except NetcoreError as exc:
                log.warning("container %s: %s", rec["name"], exc)
            rec.update(state="exited", exit_code=code, finished_at=_now())
            if rec["auto_remove"]:
                self._remove_record(rec, keep_files=True)
                if self.volumes is not None:  # --rm takes the anonymous volumes with it, as in Docker
                    self.volumes.remove_anonymous(rec.get("mounts") or ())
            else:
                self.store.put(CONTAINER, cid, rec, name=rec["name"])
            self._codes[cid] = code
            event = self._exited.pop(cid, None)
        if event is not None:
            event.set()

    def exit_event(self, cid: str) -> threading.Event | None:
        """Set when the running container ``cid`` exits (None: it is not running)."""
        return self._exited.get(cid)

    def wait(self, ref: str, timeout: float | None = None) -> int | None:
        """Block until the container exits; its exit code (also right after an auto-remove, whose
        files go now: the client that waits has read the log)."""
        with self.lock:
            cid = ref if ref in self._codes else None
            if cid is None:
                rec = self.get(ref)
                cid = rec["id"]
                if rec["state"] != "running":
                    return rec["exit_code"]
            event = self._exited.get(cid)
        if event is not None:
            event.wait(timeout)
        with self.lock:
            if self._kept.pop(cid, None) is not None:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
        return self._codes.get(cid)

    # ------------------------------------------------------------ stop / rm ----

    def stop(self, ref: str, timeout: float = 10.0) -> dict[str, Any]:
        rec = self.get(ref)
        if rec["state"] == "running":
            process.stop(_info(rec), timeout=timeout)
            self.wait(rec["id"], timeout=5.0)
        return rec

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> dict[str, Any]:
        """``volumes``: its anonymous volumes go too (``rm -v``)."""
        rec = self.get(ref)
        if rec["state"] == "running":
            if not force:
                raise Conflict(
                    f"cannot remove container {rec['name']}: container is running: stop the container before removing or force remove"
                )
            process.kill(_info(rec))
            pause.point("rm.killed")
            self.wait(rec["id"], timeout=5.0)
            pause.point("rm.exited")
        with self.lock:
            rec = self.store.get(CONTAINER, rec["id"])
            if rec is not None:
                self._remove_record(rec)
                if volumes and self.volumes is not None:
                    self.volumes.remove_anonymous(rec.get("mounts") or ())
        return rec or {}

    def _remove_record(self, rec: dict[str, Any], keep_files: bool = False) -> None:
        """The container goes; ``keep_files``: its files stay for its client (``log_path``,
        ``wait``) for up to KEEP_LOG seconds."""
        self.watcher.unwatch(rec["id"])
        self.controller.teardown_sandbox(rec["id"])
        pause.point("rm.sandbox")
        self.store.delete(CONTAINER, rec["id"])
        pause.point("rm.record")
        now = time.monotonic()
        for cid, until in list(self._kept.items()):
            if until <= now:
                del self._kept[cid]
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
        if keep_files:
            self._kept[rec["id"]] = now + KEEP_LOG
        else:
            shutil.rmtree(self.state_dir(rec["id"]), ignore_errors=True)

    # ------------------------------------------------------------ networks -----

    def connect(
        self, network: str, ref: str, ip: str | None = None, aliases: list[str] | None = None, gw_priority: int = 0
    ) -> None:
        rec = self.get(ref)
        if rec["state"] != "running":
            raise Conflict(f"container {rec['name']} is not running")
        with self.lock:
            ep = self.controller.connect(network, rec["id"], ip=ip, aliases=aliases or (), gw_priority=gw_priority)
            rec["networks"].append(ep.network_id)
            self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            self._write_files(rec, self.state_dir(rec["id"]))

    def disconnect(self, network: str, ref: str) -> None:
        rec = self.get(ref)
        if rec["state"] != "running":
            raise Conflict(f"container {rec['name']} is not running")
        with self.lock:
            ep = self.controller.disconnect(network, rec["id"])
            rec["networks"] = [n for n in rec["networks"] if n not in (network, ep.network_id)]
            self.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
            self._write_files(rec, self.state_dir(rec["id"]))

    # ------------------------------------------------------------ engine start -

    def adopt(self) -> None:
        """Make records, processes and sandboxes agree after a restart (the engine may have
        died at any point of a run or rm):

        * a run that had not finished (record still ``transient``) is rolled back: its
          process, if it got one, is stopped, its sandbox and files go, its record goes;
        * a running container whose monitor is alive is adopted; one whose monitor is
          gone is marked exited at once (the watcher fires);
        * every other monitor of this root that no running record owns is stopped
          (found from /proc: ``monitors.find``), so nothing runs that no command can reach;
        * a sandbox that no running container owns is torn down (its netns, its addresses);
        * files of containers without a record go (auto-removed ones kept for a client).
        """
        found = monitors.find(self.dir)
        adopted: set[tuple[int, int]] = set()
        for rec in self.store.list(CONTAINER):
            cid = rec["id"]
            if rec.get("transient"):
                log.info("container %s: its run did not finish; rolling it back", rec["name"])
                self._stop_all(found.pop(cid, []))
                try:
                    self.controller.teardown_sandbox(cid)
                except NetcoreError as exc:
                    log.warning("container %s: %s", rec["name"], exc)
                self.store.delete(CONTAINER, cid)
                continue
            if rec["state"] != "running" or not rec.get("process"):
                continue
            info = _info(rec)
            adopted.add((info.monitor_pid, info.monitor_start))
            self._exited[cid] = threading.Event()
            self.watcher.watch(cid, info, self.state_dir(cid))  # fires at once if it exited meanwhile
        for mons in found.values():
            self._stop_all([m for m in mons if (m.pid, m.start) not in adopted])
        running = {c["id"] for c in self.store.list(CONTAINER) if c["state"] == "running"}
        for sid in self.controller.sandbox_ids():
            if sid not in running:
                try:
                    self.controller.teardown_sandbox(sid)
                except NetcoreError as exc:
                    log.warning("sandbox %s: %s", sid[:12], exc)
        for cid in os.listdir(self.dir):
            if self.store.get(CONTAINER, cid) is None:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)

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

    def close(self) -> None:
        self.watcher.close()
        with self.lock:
            for cid in self._kept:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
            self._kept.clear()


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
