"""``netcore system ...`` (info, df, prune, events, reset), ``info``, ``version``, ``events`` and ``demo``."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from runtime.api.client import ApiError
from runtime.cli.base import Cli, Command, Group, option, pass_cli
from runtime.cli.filterflag import encode, filter_option
from runtime.cli.output import confirm

__all__ = ["system", "demo", "info", "version", "events", "df", "prune"]

CALL = """
import json, sys, time, urllib.request
url = "http://%s:8080/helloworld"
body = json.dumps({"name": "Nic"}).encode()
for attempt in range(100):
    try:
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        print(urllib.request.urlopen(req, timeout=2).read().decode())
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("no answer from " + url)
"""


@click.group(cls=Group, lazy={"info": "runtime.cli.system:info", "events": "runtime.cli.system:events"})
def system() -> None:
    """Manage the engine."""


@system.command()
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@pass_cli
def reset(cli: Cli, force: bool) -> None:
    """Remove every container and network of the engine, its kernel state, and stop it."""
    if not force and not confirm("WARNING! This removes all containers and networks, the default ones included.\nAre you sure you want to continue?"):
        return
    cli.client.request("POST", "/system/reset")


@click.command(cls=Command)
@pass_cli
def demo(cli: Cli) -> None:
    """Create a network, serve the hello-world API in one container, call it from another."""
    from runtime.demo import HELLOWORLD

    c = cli.client
    tag = os.urandom(3).hex()
    net, server = f"demo-{tag}", f"demo-server-{tag}"
    print(f"$ netcore network create {net}")
    c.request("POST", "/networks/create", {"Name": net})
    try:
        print(f"$ netcore run -d --name {server} --network {net} -- python3 helloworld.py")
        view = c.request("POST", "/containers/run", {"Name": server, "Cmd": ["python3", HELLOWORLD], "Networks": [{"name": net}]})
        ip = view["NetworkSettings"]["Networks"][net]["IPAddress"]
        print(f"server {server} is at {ip}:8080")
        print(f"$ netcore run --rm --network {net} -- python3 -c '<POST {{\"name\": \"Nic\"}} to http://{ip}:8080/helloworld>'")
        started = time.monotonic()
        client = c.request("POST", "/containers/run", {"Cmd": ["python3", "-c", CALL % ip], "Networks": [{"name": net}]})
        code = c.request("POST", f"/containers/{client['Id']}/wait", timeout=None)["StatusCode"]
        answer = b"".join(c.stream(f"/containers/{client['Id']}/logs")).decode().strip()
        c.request("DELETE", f"/containers/{client['Id']}")
        print('request:  POST /helloworld {"name": "Nic"}')
        print(f"response: {answer}")
        print(f"({(time.monotonic() - started) * 1000:.0f} ms, exit code {code})")
        if code != 0:
            sys.exit(1)
    finally:
        for step in (lambda: c.request("DELETE", f"/containers/{server}", query={"force": "1"}), lambda: c.request("DELETE", f"/networks/{net}")):
            try:
                step()
            except ApiError as exc:
                print(f"cleanup: {exc}", file=sys.stderr)
        print("cleaned up")



# ---------------------------------------------------------------- info ------

def _fmt_out(fmt: str | None, doc: dict) -> bool:
    """``--format``: ``json`` or a template of the document; False: none given (the plain layout)."""
    if not fmt:
        return False
    from runtime.cli.ops import render

    print(json.dumps(doc) if fmt == "json" else render(fmt, doc))
    return True


def _client_section(cli: Cli) -> list[str]:
    import platform

    from runtime.cli import VERSION

    return ["Client:", f" Version:    {VERSION}", f" Context:    default", f" Debug Mode: false",
            f" Python:     {platform.python_version()}"]


def _driver_lines(doc: dict) -> list[str]:
    """netcore's addition to Docker's Plugins section: where each driver comes from (``netcore plugins``)."""
    rows = doc.get("NetcorePlugins") or []
    return [" Driver Plugins:", *(f"  {r['Name']} ({r['Kind']}): {r['Distribution'] or '-'} {r['Version'] or '-'}" for r in rows)] if rows else []


@click.command(cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output: json, or a Go template such as '{{.ServerVersion}}'.")
@pass_cli
def info(cli: Cli, fmt: str | None) -> None:
    """Display system-wide information."""
    from runtime.cli.ops import binary_size

    doc = cli.client.request("GET", "/info")
    if _fmt_out(fmt, doc):
        return
    p = doc["Plugins"]
    lines = [*_client_section(cli), "", "Server:",
             f" Containers: {doc['Containers']}", f"  Running: {doc['ContainersRunning']}", f"  Paused: {doc['ContainersPaused']}",
             f"  Stopped: {doc['ContainersStopped']}", f" Images: {doc['Images']}", f" Server Version: {doc['ServerVersion']}",
             f" Storage Driver: {doc['Driver']}", *(f"  {k}: {v}" for k, v in doc.get("DriverStatus") or ()),
             f" Logging Driver: {doc['LoggingDriver']}", f" Cgroup Driver: {doc['CgroupDriver']}",
             f" Cgroup Version: {doc['CgroupVersion']}", " Plugins:", f"  Volume: {' '.join(p['Volume'])}",
             f"  Network: {' '.join(p['Network'])}", f"  Log: {' '.join(p['Log'])}", *_driver_lines(doc),
             f" Kernel Version: {doc['KernelVersion']}",
             f" Operating System: {doc['OperatingSystem']}", f" OSType: {doc['OSType']}", f" Architecture: {doc['Architecture']}",
             f" CPUs: {doc['NCPU']}", f" Total Memory: {binary_size(doc['MemTotal'])}", f" Name: {doc['Name']}", f" ID: {doc['ID']}",
             f" Docker Root Dir: {doc['DockerRootDir']}", f" Debug Mode: {str(doc['Debug']).lower()}"]
    print("\n".join(lines))


@click.command(cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output: json, or a Go template such as '{{.Server.Version}}'.")
@pass_cli
def version(cli: Cli, fmt: str | None) -> None:
    """Show the netcore version information (the client's, and the engine's if it answers)."""
    import platform

    from runtime.api.client import Client
    from runtime.cli import VERSION
    from runtime.cli.ops import render

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    client_doc = {"Version": VERSION, "ApiVersion": "1.43", "PythonVersion": platform.python_version(), "Os": "linux", "Arch": arch,
                  "Context": "default"}
    server, error = None, None
    try:  # never starts an engine: version reports what is there
        server = Client(cli.host, cli.root, autostart=False).request("GET", "/version")
    except ApiError as exc:
        error = exc
    if fmt:
        doc = {"Client": client_doc, "Server": server}
        if fmt == "json":
            print(json.dumps(doc))
        else:
            try:
                print(render(fmt, doc))
            except click.ClickException:
                if error is None:
                    raise
    else:
        print("\n".join([
            "Client:", f" Version:           {VERSION}", f" API version:       1.43", f" Python version:    {client_doc['PythonVersion']}",
            f" OS/Arch:           linux/{arch}", f" Context:           default"]))
        if server is not None:
            print("\n".join([
                "", "Server:", " Engine:", f"  Version:          {server['Version']}",
                f"  API version:      {server['ApiVersion']} (minimum version {server['MinAPIVersion']})",
                f"  Python version:   {server['PythonVersion']}", f"  OS/Arch:          {server['Os']}/{server['Arch']}",
                f"  Kernel Version:   {server['KernelVersion']}"]))
    if error is not None:
        sys.stdout.flush()
        raise error


# ---------------------------------------------------------------- df --------

def _pct(part: int, whole: int) -> str:
    return f" ({part * 100 // whole}%)" if whole else ""


@system.command("df", cls=Command)
@option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage.")
@option("--format", "fmt", metavar="FORMAT", help="Format output: table, json, or a Go template.")
@pass_cli
def df(cli: Cli, verbose: bool, fmt: str | None) -> None:
    """Show netcore disk usage."""
    from runtime.cli.ops import decimal_size as size, print_rows
    from runtime.cli.output import ago, table

    doc = cli.client.request("GET", "/system/df")
    imgs, ctrs, vols = doc["Images"], doc["Containers"], doc["Volumes"]
    img_active = [i for i in imgs if i["InUse"]]
    img_size = sum(i["Size"] for i in imgs)
    ctr_size = sum(c["SizeRw"] for c in ctrs)
    ctr_idle = sum(c["SizeRw"] for c in ctrs if c["State"] != "running")
    vol_size = sum(v["UsageData"]["Size"] for v in vols)
    vol_idle = sum(v["UsageData"]["Size"] for v in vols if not v["UsageData"]["RefCount"])
    img_idle = img_size - sum(i["Size"] for i in img_active)
    cache = doc["BuildCacheSize"]
    rows = [
        {"Type": "Images", "TotalCount": str(len(imgs)), "Active": str(len(img_active)), "Size": size(img_size),
         "Reclaimable": size(img_idle) + _pct(img_idle, img_size)},
        {"Type": "Containers", "TotalCount": str(len(ctrs)), "Active": str(sum(1 for c in ctrs if c["State"] == "running")),
         "Size": size(ctr_size), "Reclaimable": size(ctr_idle) + _pct(ctr_idle, ctr_size)},
        {"Type": "Local Volumes", "TotalCount": str(len(vols)), "Active": str(sum(1 for v in vols if v["UsageData"]["RefCount"])),
         "Size": size(vol_size), "Reclaimable": size(vol_idle) + _pct(vol_idle, vol_size)},
        {"Type": "Build Cache", "TotalCount": str(len(doc["BuildCache"])), "Active": "0", "Size": size(cache), "Reclaimable": size(cache)},
    ]
    if not verbose:
        print_rows("diskusage", fmt, rows, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
        return
    print("Images space usage:\n")
    image_rows = []
    for i in imgs:
        for ref in i["RepoTags"] or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            image_rows.append((repo, tag, i["Id"][7:19], ago(_stamp(i["Created"])), size(i["Size"]), size(i.get("SharedSize", 0)),
                               size(i["Size"]), str(i["Containers"])))
    table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], image_rows)
    print("\nContainers space usage:\n")
    table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
          [(c["Id"][:12], c["Image"], "", "0", size(c["SizeRw"]), ago(c["Created"]), c["State"], c["Names"][0].lstrip("/")) for c in ctrs])
    print("\nLocal Volumes space usage:\n")
    table(["VOLUME NAME", "LINKS", "SIZE"], [(v["Name"], str(v["UsageData"]["RefCount"]), size(v["UsageData"]["Size"])) for v in vols])
    print(f"\nBuild cache usage: {size(cache)}\n")
    table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"],
          [(b["ID"][:12], b["Type"], size(b["Size"]), "", "", "0", "false") for b in doc["BuildCache"]])


def _stamp(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


# ---------------------------------------------------------------- prune -----

@system.command("prune", cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Remove all unused images not just dangling ones.")
@option("--volumes", is_flag=True, help="Prune anonymous volumes.")
@option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@filter_option(short=False)
@pass_cli
def prune(cli: Cli, all_: bool, volumes: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused data: stopped containers, unused networks, dangling images, build cache."""
    from runtime.cli.ops import image_lines, print_prune

    query = encode(filters)
    items = ["all stopped containers", "all networks not used by at least one container",
             *(["all anonymous volumes not used by at least one container"] if volumes else []),
             "all images without at least one container associated to them" if all_ else "all dangling images",
             "unused build cache"]
    warning = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if not force and not confirm(warning + "\nAre you sure you want to continue?"):
        return
    c = cli.client
    space = 0
    res = c.request("POST", "/containers/prune", query=query or None)
    print_prune("Deleted Containers:", res["ContainersDeleted"] or [])
    space += res["SpaceReclaimed"]
    nets = c.request("POST", "/networks/prune", {})
    print_prune("Deleted Networks:", nets.get("NetworksDeleted") or [])
    if volumes:
        res = c.request("POST", "/volumes/prune")
        print_prune("Deleted Volumes:", res["VolumesDeleted"] or [])
        space += res["SpaceReclaimed"]
    res = c.request("POST", "/images/prune", query={"all": "1"} if all_ else None)
    print_prune("Deleted Images:", image_lines(res["ImagesDeleted"] or []))
    space += res["SpaceReclaimed"]
    res = c.request("POST", "/build/prune")
    print_prune("Deleted build cache objects:", res["CachesDeleted"] or [])
    space += res["SpaceReclaimed"]
    print(f"Total reclaimed space: {__import__('runtime.cli.ops', fromlist=['x']).decimal_size(space)}")


# ---------------------------------------------------------------- events ----

def _event_line(ev: dict) -> str:
    """Docker's plain line: ``TIME TYPE ACTION ID (k=v, ...)``, the time local with nanoseconds."""
    from datetime import datetime

    ns = ev["timeNano"]
    stamp = datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    zone = stamp.strftime("%z")
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}" + (f"{zone[:3]}:{zone[3:]}" if zone != "+0000" else "Z")
    attrs = ev["Actor"]["Attributes"]
    tail = f" ({', '.join(f'{k}={v}' for k, v in sorted(attrs.items()))})" if attrs else ""
    return f"{text} {ev['Type']} {ev['Action']} {ev['Actor']['ID']}{tail}"


@click.command(cls=Command)
@option("--since", metavar="TIME", help="Show all events created since timestamp (Unix time, RFC 3339, or a duration such as 10m).")
@option("--until", metavar="TIME", help="Stream events until this timestamp.")
@filter_option()
@option("--format", "fmt", metavar="FORMAT", help="Format output: json, or a Go template such as '{{.Action}}'.")
@pass_cli
def events(cli: Cli, since: str | None, until: str | None, filters: tuple[str, ...], fmt: str | None) -> None:
    """Get real time events from the engine."""
    from runtime.cli.ops import render

    query = {**encode(filters), **({"since": since} if since else {}), **({"until": until} if until else {})}
    for ev in cli.client.json_lines("/events", query):
        if not fmt:
            line = _event_line(ev)
        elif fmt == "json":
            line = json.dumps(ev)
        else:
            line = render(fmt, ev)
        print(line, flush=True)
