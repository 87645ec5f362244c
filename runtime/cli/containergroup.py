"""``netcore container ...``: Docker's management group, every verb the top-level command of
the same name (one implementation, named twice), plus ``container prune``."""

from __future__ import annotations

import click

from runtime.cli.base import Group

__all__ = ["container", "VERBS"]

C, O = "runtime.cli.container", "runtime.cli.ops"
VERBS = {
    "attach": f"{C}:attach_", "cp": f"{O}:cp", "create": f"{C}:create", "diff": f"{O}:diff", "exec": f"{C}:exec_",
    "inspect": f"{C}:container_inspect", "kill": f"{C}:kill", "logs": f"{C}:logs", "ls": f"{C}:ps", "pause": f"{O}:pause",
    "port": f"{C}:port", "prune": f"{O}:container_prune", "rename": f"{O}:rename", "restart": f"{C}:restart",
    "rm": f"{C}:rm", "run": f"{C}:run", "start": f"{C}:start", "stats": f"{O}:stats", "stop": f"{C}:stop",
    "top": f"{O}:top", "unpause": f"{O}:unpause", "wait": f"{C}:wait",
}


@click.group(cls=Group, lazy=VERBS, aliases={"list": "ls", "ps": "ls", "remove": "rm"})
def container() -> None:
    """Manage containers."""
