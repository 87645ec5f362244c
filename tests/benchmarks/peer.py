"""What a container engine must offer the measures: argv builders and a few queries.

Every measure drives peers only through this interface, so netcore, Docker and Podman
are timed doing exactly the same CLI steps.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence

from tests.benchmarks.core import Cleanup, in_netns, infra_processes, run


class Unavailable(Exception):
    """The peer is not installed or cannot start here; measures skip it with this note."""


class Peer(ABC):
    name: str = "?"
    netns: str = "ncb-?"
    version: str = ""
    daemon_pids: list[int]

    def __init__(self) -> None:
        self.daemon_pids = []
        self.notes: list[str] = []

    # lifecycle
    @abstractmethod
    def start(self, cleanup: Cleanup) -> None:
        """Bring the peer up in its own netns; push every undo onto ``cleanup``."""

    # argv builders: the CLI, end to end
    @abstractmethod
    def cli(self, *args: str) -> list[str]: ...

    run_options: tuple[str, ...] = ()  # options every ``run`` of this peer gets (Podman's ulimits)
    run_image: tuple[str, ...] = ()  # what goes between the options and the command: the image, or ``--``

    def run_argv(self, network: str, cmd: Sequence[str], rm: bool = True, detach: bool = False,
                 name: str | None = None, publish: str | None = None) -> list[str]:
        opts = [*self.run_options, "--network", network]
        opts += ["--rm"] if rm else []
        opts += ["-d"] if detach else []
        opts += ["--name", name] if name else []
        opts += ["-p", publish] if publish else []
        return self.cli("run", *opts, *self.run_image, *cmd)

    def network_create_argv(self, name: str, subnet: str | None = None) -> list[str]:
        return self.cli("network", "create", *(["--subnet", subnet] if subnet else []), name)

    def network_rm_argv(self, name: str) -> list[str]:
        return self.cli("network", "rm", name)

    def connect_argv(self, network: str, container: str) -> list[str]:
        return self.cli("network", "connect", network, container)

    def disconnect_argv(self, network: str, container: str) -> list[str]:
        return self.cli("network", "disconnect", network, container)

    def ls_argv(self) -> list[str]:
        return self.cli("network", "ls")

    def rm_force_argv(self, names: Sequence[str]) -> list[str]:
        return self.cli("rm", "-f", *names)

    # queries
    def inspect(self, container: str) -> dict:
        return json.loads(run(self.cli("inspect", container)).stdout)[0]

    def container_pid(self, container: str) -> int:
        return int(self.inspect(container)["State"]["Pid"])

    def container_ip(self, container: str, network: str) -> str:
        nets = self.inspect(container)["NetworkSettings"]["Networks"]
        return nets[network]["IPAddress"].split("/")[0]

    def infra(self) -> dict[int, str]:
        """Processes that are the engine's (daemons, shims, monitors), for memory per container."""
        return infra_processes(self.netns, self.daemon_pids)

    def host_netns_argv(self, argv: Sequence[str]) -> list[str]:
        """Run a tool in the peer's "host" namespace (where its bridges are)."""
        return in_netns(self.netns, argv)
