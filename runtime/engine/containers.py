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
from typing import Any

from netcore import Attachment, Conflict, InvalidConfig, NetcoreError, NotFound, PortBinding, names
from netcore.controller import Controller

from runtime import portspec
from runtime.engine import files, monitors, pause, process
from runtime.engine.config import ipv4

__all__ = ["Containers"]

log = logging.getLogger("netcore.containers")
CONTAINER = "container"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEEP_LOG = 60.0  # seconds an auto-removed container's files wait for its client (run --rm reads the log after the exit)
_ADJ = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "sharp", "vivid", "witty", "zen")
_NOUN = ("babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak", "yalow")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Containers:
    def __init__(self, controller: Controller, root: str, resolv_conf: str = "/etc/resolv.conf") -> None:
        self.controller = controller
        self.resolv_conf = resolv_conf  # the engine's: the host's, or made from ``daemon --dns``
        self.store = controller.store
        self.dir = os.path.join(root, "containers")
        os.makedirs(self.dir, exist_ok=True)
        self.lock = threading.RLock()
        self._exited: dict[str, threading.Event] = {}
        self._codes: dict[str, int | None] = {}
        self._kept: dict[str, float] = {}  # auto-removed containers whose files wait for the client: id -> until
        self.watcher = process.ExitWatcher(self._on_exit)

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
        argv: list[str],
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
    ) -> dict[str, Any]:
        """Create and start a container; everything is undone if any part fails."""
        if not argv:
            raise InvalidConfig("no command given: netcore run [OPTIONS] -- COMMAND [ARG...]")
        cid = names.new_id()
        name = name or self._random_name()
        if not names.valid_object_name(name):
            raise InvalidConfig(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        nets = networks or [{"name": "bridge"}]
        attachments = [
            Attachment(n["name"], n.get("ip") or None, tuple(n.get("aliases") or ()), int(n.get("gw_priority") or 0)) for n in nets
        ]
        exposed = dict(exposed_ports or {})
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
            "created": _now(),
            "state": "created",
            "exit_code": None,
            "started_at": None,
            "finished_at": None,
            "process": None,
            "transient": True,  # until the process runs: an engine that dies before rolls this run back at its start
        }
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
                pause.point("run.files")
                env_full = {"PATH": DEFAULT_PATH, "HOSTNAME": rec["hostname"], **rec["env"]}
                bind = {"/etc/resolv.conf": f"{sdir}/resolv.conf"}
                if not host_ns:
                    bind.update({"/etc/hosts": f"{sdir}/hosts", "/etc/hostname": f"{sdir}/hostname"})
                spec = process.ProcessSpec(
                    container_id=cid,
                    argv=list(argv),
                    env=env_full,
                    workdir=workdir,
                    hostname=None if host_ns else rec["hostname"],
                    netns_path=sandbox.netns_path,
                    bind_files=bind,
                    state_dir=sdir,
                )
                self._exited[cid] = threading.Event()
                info = process.start(spec)
                pause.point("run.process")
            except BaseException as exc:
                self._exited.pop(cid, None)
                try:
                    self.controller.teardown_sandbox(cid)
                finally:
                    self.store.delete(CONTAINER, cid)
                    shutil.rmtree(sdir, ignore_errors=True)
                if isinstance(exc, process.ProcessError):
                    raise InvalidConfig(str(exc)) from None
                raise
            rec.update(state="running", started_at=_now(), process=_info_dict(info))
            rec.pop("transient", None)
            self.store.put(CONTAINER, cid, rec, name=name)
            self.watcher.watch(cid, info, sdir)
            pause.point("run.running")
        return rec

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

    def remove(self, ref: str, force: bool = False) -> dict[str, Any]:
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
        for rec in self.store.list(CONTAINER):
            try:
                self.remove(rec["id"], force=True)
            except NetcoreError as exc:
                log.warning("%s", exc)

    def close(self) -> None:
        self.watcher.close()
        with self.lock:
            for cid in self._kept:
                shutil.rmtree(self.state_dir(cid), ignore_errors=True)
            self._kept.clear()


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
