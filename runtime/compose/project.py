"""Running a compose project on the engine, through its API only.

Everything the project makes carries docker-compose's labels
(``com.docker.compose.project``, ``.service``, ``.network``), which is how ``ps``, ``logs``
and ``down`` find it again without the engine knowing about compose. ``up`` makes the
networks, then the containers in dependency order, waiting where ``depends_on`` asks
for a healthy or a completed service; if any step fails, what this ``up`` made is
removed again (containers, then networks) before the error is reported.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from runtime.api.client import ApiError, Client, q
from runtime.compose.errors import ComposeError
from runtime.compose.logs import LogPrinter
from runtime.compose.model import Mount, Network, Project, Service, Volume

__all__ = ["Runner", "PROJECT_LABEL", "SERVICE_LABEL", "NETWORK_LABEL", "VOLUME_LABEL"]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NETWORK_LABEL = "com.docker.compose.network"
VOLUME_LABEL = "com.docker.compose.volume"
NUMBER_LABEL = "com.docker.compose.container-number"
HASH_LABEL = "com.docker.compose.config-hash"
HOST_IMAGE = "host"
POLL = 0.1  # seconds between two looks at a dependency's health


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Runner:
    """One project on one engine; ``say`` prints progress (stderr, as docker-compose)."""

    def __init__(self, project: Project, client: Client, say: Callable[[str], None] = _say) -> None:
        self.project = project
        self.client = client
        self.say = say

    # ------------------------------------------------------------ names -----

    def container_name(self, svc: Service) -> str:
        return svc.container_name or f"{self.project.name}_{svc.name}_1"

    def _select(self, services: list[str] | None) -> list[Service]:
        for name in services or ():
            if name not in self.project.services:
                raise ComposeError(f"no such service: {name}")
        return self.project.order(services or None)

    # ------------------------------------------------------------ engine ----

    def containers(self, services: list[str] | None = None) -> list[dict[str, Any]]:
        """The project's containers (all states), in the project's service order."""
        rows = self.client.request("GET", "/containers/json", query={"all": "1"})
        mine = [r for r in rows if (r.get("Labels") or {}).get(PROJECT_LABEL) == self.project.name]
        if services:
            mine = [r for r in mine if r["Labels"].get(SERVICE_LABEL) in services]
        rank = {s.name: i for i, s in enumerate(self.project.order())}
        return sorted(mine, key=lambda r: (rank.get(r["Labels"].get(SERVICE_LABEL), len(rank)), r["Names"]))

    def networks(self) -> list[dict[str, Any]]:
        return [n for n in self.client.request("GET", "/networks") if (n.get("Labels") or {}).get(PROJECT_LABEL) == self.project.name]

    def _find(self, path: str) -> dict[str, Any] | None:
        try:
            return self.client.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # ------------------------------------------------------------ up --------

    def up(self, services: list[str] | None = None, detach: bool = False, build: bool = False,
           abort_on_exit: bool = False, exit_code_from: str | None = None) -> int:
        """Bring the project up; attached, follow the logs until every container exited. The exit code."""
        selected = self._select(services)
        if exit_code_from is not None and exit_code_from not in self.project.services:
            raise ComposeError(f"no such service: {exit_code_from}")
        self._check_builds(selected, build)
        made_networks: list[str] = []
        made_volumes: list[str] = []
        made_containers: list[str] = []
        try:
            for net in self.project.used_networks(selected):
                self._ensure_network(net, made_networks)
            for vol in self._used_volumes(selected):
                self._ensure_volume(vol, made_volumes)
            ids = {}
            for svc in selected:
                self._wait_dependencies(svc, ids)
                ids[svc.name] = self._ensure_container(svc, made_containers)
        except BaseException as exc:
            self._roll_back(made_containers, made_networks, made_volumes)
            if isinstance(exc, ApiError):
                raise ComposeError(str(exc)) from None
            raise
        if detach:
            return 0
        return self._attach([self.container_name(s) for s in selected], abort_on_exit or exit_code_from is not None, exit_code_from)

    def image_name(self, svc: Service) -> str:
        """The image a service runs: its ``image``, else the one its ``build`` makes (``<project>_<service>``)."""
        return svc.image or f"{self.project.name}_{svc.name}"

    def _check_builds(self, selected: list[Service], build: bool) -> None:
        """``--build``: build every service that has a build section; else only those whose image is missing."""
        needs = [s for s in selected if s.build is not None and (build or not self._has_image(self.image_name(s)))]
        if needs:
            self.build([s.name for s in needs], with_dependencies=False)

    def _has_image(self, ref: str) -> bool:
        if ref == HOST_IMAGE:
            return True
        try:
            return self._find(f"/images/{q(ref)}/json") is not None
        except ApiError:
            return False

    def _ensure_network(self, net: Network, made: list[str]) -> None:
        found = self._find(f"/networks/{q(net.name)}")
        if net.external:
            if found is None:
                raise ComposeError(
                    f"network {net.name} declared as external, but could not be found: "
                    f"create it with `netcore network create {net.name}` and try again"
                )
            return
        if found is not None:
            labels = found.get("Labels") or {}
            if labels.get(PROJECT_LABEL) != self.project.name:
                raise ComposeError(f"network {net.name} already exists and does not belong to project {self.project.name}")
            return
        driver = net.driver or "bridge"
        self.say(f'Creating network "{net.name}" with ' + ("the default driver" if not net.driver else f'driver "{driver}"'))
        ipam = {k: v for k, v in (("Subnet", net.subnet), ("Gateway", net.gateway), ("IPRange", net.ip_range)) if v}
        body = {
            "Name": net.name,
            "Driver": driver,
            "Options": net.driver_opts,
            "IPAM": {"Config": [ipam] if ipam else []},
            "Internal": net.internal,
            "Labels": {**net.labels, PROJECT_LABEL: self.project.name, NETWORK_LABEL: net.key},
        }
        self.client.request("POST", "/networks/create", body)
        made.append(net.name)

    def _used_volumes(self, selected: list[Service]) -> list[Volume]:
        keys = {m.source for s in selected for m in s.volumes if m.type == "volume" and m.source}
        return [v for k, v in self.project.volumes.items() if k in keys]

    def _ensure_volume(self, vol: Volume, made: list[str]) -> None:
        try:
            found = self._find(f"/volumes/{q(vol.name)}")
        except ApiError as exc:
            raise ComposeError(f"volume {vol.name}: {exc}") from None
        if found is not None:
            if not vol.external and (found.get("Labels") or {}).get(PROJECT_LABEL) != self.project.name:
                self.say(f"volume {vol.name} already exists but was not created by compose: it is used as is")
            return
        if vol.external:
            raise ComposeError(f"volume {vol.name} declared as external, but could not be found: "
                               f"create it with `netcore volume create {vol.name}` and try again")
        self.say(f'Creating volume "{vol.name}" with {"default" if not vol.driver else vol.driver} driver')
        body = {"Name": vol.name, "Driver": vol.driver or "local", "DriverOpts": vol.driver_opts,
                "Labels": {**vol.labels, PROJECT_LABEL: self.project.name, VOLUME_LABEL: vol.key}}
        try:
            self.client.request("POST", "/volumes/create", body)
        except ApiError as exc:
            if exc.status == 404:
                raise ComposeError("named volumes need the engine's volume store, which this engine does not have") from None
            raise
        made.append(vol.name)

    def _mount(self, m: Mount) -> dict[str, Any]:
        """A service volume as the API's ``Mounts`` entry (Docker's shape)."""
        source = self.project.volumes[m.source].name if m.type == "volume" and m.source else (m.source or "")
        return {"Type": m.type, "Source": source, "Target": m.target, "ReadOnly": m.read_only}

    def container_body(self, svc: Service) -> dict[str, Any]:
        """The engine API's run request for ``svc``'s container."""
        exposed: dict[str, Any] = dict(svc.expose)
        bindings: dict[str, list[dict[str, str]]] = {}
        for e, b in svc.ports:
            exposed.update(e)
            for key, hosts in b.items():
                bindings.setdefault(key, []).extend(hosts)
        nets = []
        for key, sn in svc.networks.items():
            spec: dict[str, Any] = {"name": self.project.networks[key].name, "aliases": [svc.name, *sn.aliases]}
            if sn.ipv4_address:
                spec["ip"] = sn.ipv4_address
            if sn.priority:
                spec["gw_priority"] = sn.priority
            nets.append(spec)
        body: dict[str, Any] = {
            "Name": self.container_name(svc),
            "Image": self.image_name(svc),
            "Entrypoint": svc.entrypoint,  # Docker's rules: it replaces the image's and drops its Cmd
            "Cmd": svc.command or [],
            "Env": svc.environment,
            "WorkingDir": svc.working_dir,
            "Hostname": svc.hostname,
            "Networks": nets,
            "ExposedPorts": exposed,
            "PortBindings": bindings,
            "Dns": svc.dns,
            "Mounts": [self._mount(m) for m in svc.volumes],
            "Labels": {**svc.labels, PROJECT_LABEL: self.project.name, SERVICE_LABEL: svc.name, NUMBER_LABEL: "1"},
        }
        if svc.healthcheck is not None:
            body["Healthcheck"] = svc.healthcheck.api()
        if svc.restart != "no":
            name, _, count = svc.restart.partition(":")
            body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        body["Labels"][HASH_LABEL] = digest
        return body

    def _ensure_container(self, svc: Service, made: list[str]) -> str:
        """Create ``svc``'s container unless an identical one runs; its id."""
        name = self.container_name(svc)
        body = self.container_body(svc)
        found = self._find(f"/containers/{q(name)}/json")
        if found is not None:
            labels = found["Config"].get("Labels") or {}
            if labels.get(PROJECT_LABEL) != self.project.name:
                raise ComposeError(f'container name "{name}" is already in use by a container outside project {self.project.name}')
            if found["State"]["Running"] and labels.get(HASH_LABEL) == body["Labels"][HASH_LABEL]:
                self.say(f"{name} is up-to-date")
                return found["Id"]
            self.say(f"Recreating {name} ...")
            self.client.request("DELETE", f"/containers/{q(found['Id'])}", query={"force": "1"})
        else:
            self.say(f"Creating {name} ...")
        created = self.client.request("POST", "/containers/run", body)
        made.append(created["Id"])
        self.say(f"{'Recreating' if found else 'Creating'} {name} ... done")
        return created["Id"]

    def _wait_dependencies(self, svc: Service, ids: dict[str, str]) -> None:
        for dep, cond in svc.depends_on.items():
            if cond == "service_started" or dep not in ids:
                continue
            name = self.container_name(self.project.services[dep])
            if cond == "service_completed_successfully":
                code = self.client.request("POST", f"/containers/{q(ids[dep])}/wait", timeout=None)["StatusCode"]
                if code != 0:
                    raise ComposeError(f'service "{dep}" didn\'t complete successfully: exit {code}')
                continue
            while True:  # service_healthy
                view = self.client.request("GET", f"/containers/{q(ids[dep])}/json")
                status = (view["State"].get("Health") or {}).get("Status")
                if status == "healthy":
                    break
                if status == "unhealthy":
                    raise ComposeError(f"container {name} is unhealthy")
                if not view["State"]["Running"]:
                    raise ComposeError(f"container {name} exited ({view['State']['ExitCode']}) before it was healthy")
                time.sleep(POLL)

    def _roll_back(self, containers: list[str], networks: list[str], volumes: list[str]) -> None:
        """Undo what a failed ``up`` made: containers first (they hold the networks and volumes)."""
        for cid in reversed(containers):
            try:
                self.client.request("DELETE", f"/containers/{q(cid)}", query={"force": "1"})
            except ApiError as exc:
                self.say(f"rollback: container {cid[:12]}: {exc}")
        for name in reversed(networks):
            try:
                self.client.request("DELETE", f"/networks/{q(name)}")
            except ApiError as exc:
                self.say(f"rollback: network {name}: {exc}")
        for name in reversed(volumes):
            try:
                self.client.request("DELETE", f"/volumes/{q(name)}")
            except ApiError as exc:
                self.say(f"rollback: volume {name}: {exc}")

    # ------------------------------------------------------------ attached --

    def _attach(self, names: list[str], abort_on_exit: bool, exit_code_from: str | None) -> int:
        """Follow the containers' logs until all exited (or one, with ``abort_on_exit``); Ctrl-C stops them."""
        printer = LogPrinter(names)
        one_shot = {self.container_name(self.project.services[dep]) for s in self.project.services.values()
                    for dep, cond in s.depends_on.items() if cond == "service_completed_successfully"}
        self.say(f"Attaching to {', '.join(names)}")
        done = threading.Event()
        first: list[str] = []
        left = set(names)
        lock = threading.Lock()

        def on_exit(name: str) -> None:
            code = self._exit_code(name)
            printer.line(f"{name} exited with code {code}")
            with lock:
                left.discard(name)
                first.append(name)
                if not left or (abort_on_exit and name not in one_shot):  # an init service's exit is expected
                    done.set()

        threads = printer.follow({n: (lambda n=n: self.client.stream(f"/containers/{q(n)}/logs", {"follow": "1"})) for n in names}, on_exit)
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.say("Gracefully stopping... (press Ctrl+C again to force)")
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            self.stop()
            _join(threads)
            return 130
        if abort_on_exit and left:
            self.say("Aborting on container exit...")
            self.stop()
            _join(threads)
        if exit_code_from is not None:
            return self._exit_code(self.container_name(self.project.services[exit_code_from])) or 0
        return 0

    def _exit_code(self, name: str) -> int | None:
        try:
            return self.client.request("POST", f"/containers/{q(name)}/wait", timeout=None)["StatusCode"]
        except ApiError:
            return None

    # ------------------------------------------------------------ stop / down

    def _grace(self, row: dict[str, Any]) -> float:
        svc = self.project.services.get(row["Labels"].get(SERVICE_LABEL, ""))
        return svc.stop_grace_period if svc else 10.0

    def stop(self, services: list[str] | None = None) -> None:
        for row in reversed(self.containers(services)):
            if row["State"] in ("running", "paused"):  # a paused one stops too (its signal lands on resume)
                t = self._grace(row)
                self.say(f"Stopping {row['Names']} ...")
                self.client.request("POST", f"/containers/{q(row['ID'])}/stop", query={"t": int(t)}, timeout=t + 30)
                self.say(f"Stopping {row['Names']} ... done")

    def down(self, volumes: bool = False) -> None:
        """Stop and remove the project's containers, then its networks (``volumes``: its named volumes)."""
        try:
            self.stop()
            for row in reversed(self.containers()):
                self.say(f"Removing {row['Names']} ...")
                self.client.request("DELETE", f"/containers/{q(row['ID'])}", query={"force": "1"})
                self.say(f"Removing {row['Names']} ... done")
            for net in self.networks():
                self.say(f"Removing network {net['Name']}")
                self.client.request("DELETE", f"/networks/{q(net['Id'])}")
            if volumes:
                for vol in self.volumes():
                    self.say(f"Removing volume {vol['Name']}")
                    self.client.request("DELETE", f"/volumes/{q(vol['Name'])}")
        except ApiError as exc:
            raise ComposeError(str(exc)) from None

    def volumes(self) -> list[dict[str, Any]]:
        """The project's named volumes (none on an engine without a volume store)."""
        try:
            listed = self.client.request("GET", "/volumes")
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise
        return [v for v in (listed or {}).get("Volumes") or [] if (v.get("Labels") or {}).get(PROJECT_LABEL) == self.project.name]

    # ------------------------------------------------------------ build -----

    def build(self, services: list[str] | None = None, with_dependencies: bool = True) -> None:
        """Build the images of the services with a build section (all, or those named)."""
        from runtime.compose import build as builder

        selected = self._select(services) if with_dependencies or not services else [self.project.services[n] for n in services]
        todo = [s for s in selected if s.build is not None]
        for svc in todo:
            self.say(f"Building {svc.name}")
            builder.build_image(self.client, svc.name, svc.build, self.image_name(svc))


def _join(threads: list[threading.Thread], timeout: float = 5.0) -> None:
    """Let the log readers print the stopped containers' last lines and exit codes."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
