"""``netcore compose``: docker-compose's commands over runtime.compose.

Only the argument handling lives here; loading, validation and the work are in
``runtime/compose/``. A compose error is one line on stderr and exit 1 (docker-compose's
code for a bad file or a failed command). The group's options (``-f``, ``-p``, ...) are
kept in a ``ComposeOptions`` that every verb gets.
"""

from __future__ import annotations

import sys

import click

from runtime.cli.base import Cli, Group, option, pass_cli

__all__ = ["compose"]


class ComposeOptions:
    def __init__(self, files: tuple[str, ...], project_name: str | None, project_directory: str | None, env_file: str | None) -> None:
        self.file = list(files)
        self.project_name = project_name
        self.project_directory = project_directory
        self.env_file = env_file


pass_options = click.make_pass_decorator(ComposeOptions)


@click.group(cls=Group)
@option("-f", "--file", "files", multiple=True, metavar="FILE",
        help="Compose file (repeatable; default compose.yaml or docker-compose.yml here or above).")
@option("-p", "--project-name", metavar="NAME", help="Project name (default: the directory's name).")
@option("--project-directory", metavar="PATH", help="Project directory (default: the first file's).")
@option("--env-file", metavar="PATH", help="Variables file (default: .env in the project directory).")
@click.pass_context
def compose(ctx: click.Context, files: tuple[str, ...], project_name: str | None, project_directory: str | None,
            env_file: str | None) -> None:
    """Define and run multi-container applications (docker-compose's files)."""
    ctx.obj = ComposeOptions(files, project_name, project_directory, env_file)


def _project(opts: ComposeOptions):
    from runtime.compose import loader, model

    src = loader.load(opts.file or None, opts.project_name, opts.project_directory, env_file=opts.env_file)
    return src, model.from_source(src)


def _runner(cli: Cli, opts: ComposeOptions):
    from runtime.compose.project import Runner

    return Runner(_project(opts)[1], cli.client)


def _guard(action):
    """Run a compose action: a ComposeError is the one line the user sees (exit 1)."""
    import functools

    @functools.wraps(action)
    def run(*args, **kwargs) -> None:
        from runtime.compose.errors import ComposeError

        try:
            code = action(*args, **kwargs)
        except ComposeError as exc:
            raise click.ClickException(str(exc)) from None
        if code:
            sys.exit(code)

    return run


@compose.command()
@option("-d", "--detach", is_flag=True, help="Run containers in the background.")
@option("--build", is_flag=True, help="Build images before starting containers.")
@option("--abort-on-container-exit", is_flag=True, help="Stop all containers if any container exits.")
@option("--exit-code-from", metavar="SERVICE", help="Return this service's exit code (implies --abort-on-container-exit).")
@click.argument("services", nargs=-1, metavar="[SERVICE...]")
@pass_options
@pass_cli
@_guard
def up(cli: Cli, opts: ComposeOptions, detach: bool, build: bool, abort_on_container_exit: bool,
       exit_code_from: str | None, services: tuple[str, ...]) -> int:
    """Create and start the project's networks and containers."""
    return _runner(cli, opts).up(list(services), detach=detach, build=build,
                                 abort_on_exit=abort_on_container_exit, exit_code_from=exit_code_from)


@compose.command()
@option("-v", "--volumes", is_flag=True, help="Remove the named volumes of the project.")
@pass_options
@pass_cli
@_guard
def down(cli: Cli, opts: ComposeOptions, volumes: bool) -> None:
    """Stop and remove the project's containers and networks."""
    _runner(cli, opts).down(volumes=volumes)


@compose.command()
@option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@option("--services", "services_only", is_flag=True, help="Display services.")
@click.argument("services", nargs=-1, metavar="[SERVICE...]")
@pass_options
@pass_cli
@_guard
def ps(cli: Cli, opts: ComposeOptions, quiet: bool, services_only: bool, services: tuple[str, ...]) -> None:
    """List the project's containers."""
    from runtime.cli.output import table

    runner = _runner(cli, opts)
    if services_only:
        for svc in runner.project.order():
            print(svc.name)
        return
    rows = runner.containers(list(services))
    if quiet:
        for r in rows:
            print(r["ID"])
        return
    table(["NAME", "COMMAND", "SERVICE", "STATUS", "PORTS"],
          [(r["Names"], _short(r["Command"]), r["Labels"].get("com.docker.compose.service", ""), _state(cli, r), r["Ports"])
           for r in rows])


def _short(cmd: str) -> str:
    return cmd if len(cmd) <= 30 else cmd[:29] + "…"


def _state(cli: Cli, row) -> str:
    """docker-compose's State column: ``Up``, ``Up (healthy)``, ``Exit 0``."""
    if row["State"] == "running":
        from runtime.api.client import q

        health = (cli.client.request("GET", f"/containers/{q(row['ID'])}/json")["State"].get("Health") or {}).get("Status")
        return f"Up ({health})" if health else "Up"
    if row["State"] == "exited":
        return row["Status"].replace("Exited", "Exit").replace("(", "").replace(")", "")
    return row["Status"]


@compose.command()
@option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.argument("services", nargs=-1, metavar="[SERVICE...]")
@pass_options
@pass_cli
@_guard
def logs(cli: Cli, opts: ComposeOptions, follow: bool, services: tuple[str, ...]) -> None:
    """Show the output of the project's containers."""
    import threading

    from runtime.api.client import q
    from runtime.compose.logs import LogPrinter

    rows = _runner(cli, opts).containers(list(services))
    printer = LogPrinter(r["Names"] for r in rows)
    query = {"follow": "1" if follow else "0"}
    if not follow:
        for r in rows:
            printer.copy(r["Names"], cli.client.stream(f"/containers/{q(r['ID'])}/logs", query))
        return
    left = threading.Semaphore(0)
    threads = printer.follow({r["Names"]: (lambda i=r["ID"]: cli.client.stream(f"/containers/{q(i)}/logs", query)) for r in rows},
                             lambda name: left.release())
    try:
        for _ in threads:
            while not left.acquire(timeout=0.5):
                pass
    except KeyboardInterrupt:
        return


@compose.command()
@option("-q", "--quiet", is_flag=True, help="Only validate the configuration, print nothing.")
@option("--services", "services_only", is_flag=True, help="Print the service names, one per line.")
@pass_options
@_guard
def config(opts: ComposeOptions, quiet: bool, services_only: bool) -> None:
    """Validate the compose file and print it as netcore reads it."""
    from runtime.compose.render import config_yaml

    src, project = _project(opts)
    if services_only:
        for svc in project.order():
            print(svc.name)
    elif not quiet:
        sys.stdout.write(config_yaml(project, src.data))


@compose.command()
@click.argument("services", nargs=-1, metavar="[SERVICE...]")
@pass_options
@pass_cli
@_guard
def build(cli: Cli, opts: ComposeOptions, services: tuple[str, ...]) -> None:
    """Build the images of the project's services that have a build section."""
    _runner(cli, opts).build(list(services) or None)
