"""Docker-shaped JSON views of networks and containers, as ``inspect`` prints them."""

from __future__ import annotations

import os
from typing import Any

from netcore import NetcoreError, Network
from netcore.controller import Controller

from runtime import portspec

__all__ = ["network_view", "container_view", "container_summary", "state_paths", "ZERO_TIME"]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Docker's time of what has not happened (never started, not finished)


def network_view(ctl: Controller, net: Network, driver_state: bool = True) -> dict[str, Any]:
    """``driver_state``: ask the driver for its runtime facts (inspect), which may cost it a
    round trip to a daemon (routed asks BIRD); the list of all networks does without."""
    containers = {}
    for ep in ctl.endpoints(net):
        containers[ep.sandbox_id] = {
            "Name": ep.name,
            "EndpointID": ep.id,
            "MacAddress": ep.mac or "",
            "IPv4Address": ep.address or "",
            "IPv6Address": "",
        }
    config = []
    if net.subnet:
        entry = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            entry["IPRange"] = net.ip_range
        if net.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(net.aux_addresses)
        config.append(entry)
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": net.scope,
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": net.ipam_driver, "Options": {}, "Config": config},
        "Internal": net.internal,
        "Attachable": net.attachable,
        "Ingress": False,
        "Containers": containers,
        "Options": net.options,
        "Labels": net.labels,
        **({"DriverState": state} if driver_state and (state := ctl.network_oper_info(net)) else {}),
    }


def _endpoint_state(ctl: Controller, net: Network, ep: Any) -> dict[str, Any]:
    """The driver's ``endpoint_oper_info``, for show: a failing driver must not break inspect."""
    try:
        return ctl.endpoint_oper_info(net, ep)
    except NetcoreError as exc:
        return {"Error": str(exc)}


def _networks(ctl: Controller, rec: dict[str, Any], driver_state: bool = False) -> dict[str, Any]:
    """``driver_state``: add each endpoint's ``DriverState`` (inspect only: it may cost a driver a round trip)."""
    sandbox = ctl.sandbox(rec["id"])
    if sandbox is None:
        return {}
    out = {}
    for ep in ctl.sandbox_endpoints(sandbox):
        try:
            net = ctl.network(ep.network_id)
        except Exception:
            continue
        out[net.name] = {
            "NetworkID": net.id,
            "EndpointID": ep.id,
            "Gateway": ep.gateway or "",
            "IPAddress": ep.ip or "",
            "IPPrefixLen": int(ep.address.split("/")[1]) if ep.address else 0,
            "MacAddress": ep.mac or "",
            "Aliases": ep.aliases,
            "GwPriority": ep.gw_priority,
            "InterfaceName": ep.ifname,
        }
        if driver_state and (state := _endpoint_state(ctl, net, ep)):
            out[net.name]["DriverState"] = state
    return out


def _paused(rec: dict[str, Any]) -> bool:
    return rec["state"] == "running" and bool(rec.get("paused"))


def _status(rec: dict[str, Any]) -> str:
    """Docker's STATUS words (the CLI adds how long ago)."""
    state = rec["state"]
    if state == "running":
        return "Up"
    if state == "exited":
        return f"Exited ({rec['exit_code']})"
    if state == "restarting":
        return f"Restarting ({rec['exit_code']})"
    if state == "removing":
        return "Removal In Progress"
    return "Created"


def _ports(ctl: Controller, rec: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings.Ports: exposed ports, with the host ports the gateway endpoint publishes."""
    sandbox = ctl.sandbox(rec["id"]) if rec["state"] == "running" else None
    published = [b for ep in (ctl.sandbox_endpoints(sandbox) if sandbox else ()) for b in ep.ports]
    return portspec.ports_view(rec.get("exposed_ports") or {}, published)


def container_summary(ctl: Controller, rec: dict[str, Any]) -> dict[str, Any]:
    """One row of ``ps``."""
    return {
        "ID": rec["id"],
        "Names": rec["name"],
        "Image": rec.get("image") or "host",
        "ImageID": rec.get("image_id") or "host",
        "Command": " ".join(rec["argv"]),
        "CreatedAt": rec["created"],
        "State": "paused" if _paused(rec) else rec["state"],
        "Status": _status(rec),
        "StartedAt": rec["started_at"],
        "FinishedAt": rec["finished_at"],
        "Ports": portspec.format_ps(_ports(ctl, rec)),
        "Networks": ",".join(sorted(_networks(ctl, rec))) if rec["state"] == "running" else "",
        "Labels": rec.get("labels") or {},
        "Mounts": [m.get("Name") or m.get("Source") or "" for m in rec.get("mounts") or ()],
        "LocalVolumes": sum(1 for m in rec.get("mounts") or () if m.get("Type") == "volume"),
    }


def _default_bridge(networks: dict[str, Any]) -> dict[str, Any]:
    """Docker's top-level ``NetworkSettings`` fields: the default ``bridge`` network's endpoint, else empty."""
    ep = networks.get("bridge") or {}
    return {
        "EndpointID": ep.get("EndpointID", ""),
        "Gateway": ep.get("Gateway", ""),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": ep.get("IPAddress", ""),
        "IPPrefixLen": ep.get("IPPrefixLen", 0),
        "IPv6Gateway": "",
        "MacAddress": ep.get("MacAddress", ""),
    }


def container_view(ctl: Controller, rec: dict[str, Any], health: dict[str, Any] | None = None) -> dict[str, Any]:
    """``health``: the container's ``State.Health`` (runtime.engine.health), if it has a healthcheck."""
    proc = rec.get("process") or {}
    running = rec["state"] == "running"
    sandbox = ctl.sandbox(rec["id"])
    networks = _networks(ctl, rec, driver_state=True)
    return {
        "Id": rec["id"],
        "Name": "/" + rec["name"],
        "Created": rec["created"],
        "Path": rec["argv"][0],
        "Image": rec.get("image_id") or "host",
        "Args": rec["argv"][1:],
        "State": {
            "Status": "paused" if _paused(rec) else rec["state"],
            "Running": running or rec["state"] == "restarting",  # as Docker: a restarting container counts as running
            "Paused": _paused(rec),
            "Restarting": rec["state"] == "restarting",
            "OOMKilled": bool(rec.get("oom_killed")),  # runtime.engine.cgroups: its memory limit
            "Dead": False,
            "Pid": proc.get("pid", 0) if running else 0,
            "ExitCode": rec["exit_code"] or 0,
            "Error": rec.get("error") or "",
            "StartedAt": rec["started_at"] or ZERO_TIME,
            "FinishedAt": rec["finished_at"] or ZERO_TIME,
            **({"Health": health} if health is not None else {}),
        },
        "RestartCount": rec.get("restart_count", 0),
        "Platform": "linux",
        "Driver": "overlay",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "Config": {
            "Hostname": rec["hostname"],
            "Domainname": "",
            "Tty": rec.get("tty", False),
            "OpenStdin": rec.get("open_stdin", False),
            "StdinOnce": rec.get("stdin_once", False),
            "Env": [f"{k}={v}" for k, v in rec["env"].items()],
            "Cmd": rec["argv"][len(rec.get("entrypoint") or ()):] or None,
            "Entrypoint": rec.get("entrypoint") or None,
            "WorkingDir": rec["workdir"] or "",
            "ExposedPorts": rec.get("exposed_ports") or {},
            "Labels": rec.get("labels") or {},
            **({"Healthcheck": rec["healthcheck"]} if rec.get("healthcheck") else {}),
            "Image": rec.get("image") or "host",
            "User": rec.get("user") or "",
            **_run_config(rec),
        },
        "Mounts": rec.get("mounts") or [],
        "HostConfig": {
            "Binds": rec.get("binds") or None,
            "AutoRemove": rec["auto_remove"],
            "RestartPolicy": rec.get("restart_policy") or {"Name": "no", "MaximumRetryCount": 0},
            "NetworkMode": rec.get("network_mode") or (rec["networks"][0] if rec["networks"] else ""),
            "PortBindings": rec.get("port_bindings") or {},
            "PublishAllPorts": rec.get("publish_all", False),
            "Dns": rec.get("dns") or [],
            "ReadonlyRootfs": rec.get("read_only", False),
            "Privileged": rec.get("privileged", False),
            "CapAdd": rec.get("cap_add") or None,
            "CapDrop": rec.get("cap_drop") or None,
            **_run_host_config(rec),
        },
        "Netcore": {  # what ``exec`` applies to the process it starts (pid 1 has the same)
            "Caps": rec.get("caps"),
            "SeccompProgram": rec.get("seccomp") or "",
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": sandbox.id if sandbox else "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "SandboxKey": sandbox.netns_path if sandbox and sandbox.netns_path else "",
            "Ports": _ports(ctl, rec),
            **_default_bridge(networks),
            "Networks": networks,
        },
    }


def _run_config(rec: dict[str, Any]) -> dict[str, Any]:
    """``Config``'s fields of the run flags (runtime.engine.runconfig), as Docker shows them."""
    out: dict[str, Any] = {"StopSignal": rec["stop_signal"]} if rec.get("stop_signal") else {}
    if rec.get("stop_timeout") is not None:
        out["StopTimeout"] = rec["stop_timeout"]
    if rec.get("mac_address"):
        out["MacAddress"] = rec["mac_address"]
    return out


def _run_host_config(rec: dict[str, Any]) -> dict[str, Any]:
    """``HostConfig``'s fields of the run flags, as Docker shows them."""
    return {
        "ExtraHosts": rec.get("extra_hosts") or None,
        "DnsSearch": rec.get("dns_search") or [],
        "DnsOptions": rec.get("dns_options") or [],
        "Init": rec.get("init") or None,
        "Memory": rec.get("memory") or 0,
        "MemorySwap": 2 * rec["memory"] if rec.get("memory") else 0,
        "NanoCpus": rec.get("nano_cpus") or 0,
    }


def state_paths(sdir: str, upper: str, work: str) -> dict[str, Any]:
    """``inspect``'s Docker fields that name the container's files on the host: its
    resolv.conf, hostname and hosts (those it has), and its overlay upper and work dirs."""
    def path(name: str) -> str:
        p = os.path.join(sdir, name)
        return p if os.path.exists(p) else ""

    return {
        "ResolvConfPath": path("resolv.conf"),
        "LogPath": path("log"),  # Docker's: empty until the container has started
        "HostnamePath": path("hostname"),
        "HostsPath": path("hosts"),
        "ExecIDs": None,
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": upper, "WorkDir": work}},
    }
