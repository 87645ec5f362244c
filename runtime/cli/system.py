"""``netcore system reset`` and ``netcore demo``."""

from __future__ import annotations

import os
import sys
import time

import click

from runtime.api.client import ApiError
from runtime.cli.base import Cli, Command, Group, option, pass_cli
from runtime.cli.output import confirm

__all__ = ["system", "demo"]

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


@click.group(cls=Group)
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

