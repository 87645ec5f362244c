"""``netcore compose``: docker-compose's commands over runtime.compose.

Only the argument handling lives here; loading, validation and the work are in
``runtime/compose/``. A compose error is one line on stderr and exit 1 (docker-compose's
code for a bad file or a failed command).
"""

from __future__ import annotations

import sys

__all__ = ["register"]


def _project(cli, a):
    from runtime.compose import loader, model

    src = loader.load(a.file or None, a.project_name, a.project_directory, env_file=a.env_file)
    return src, model.from_source(src)


def _runner(cli, a):
    from runtime.compose.project import Runner

    return Runner(_project(cli, a)[1], cli.client)


def _guard(action):
    """Run a compose action: a ComposeError is the one line the user sees."""

    def run(cli, a) -> None:
        from runtime.compose.errors import ComposeError

        try:
            code = action(cli, a)
        except ComposeError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            sys.exit(1)
        if code:
            sys.exit(code)

    run.__doc__ = action.__doc__
    return run


def up(cli, a) -> int:
    """Create and start the project's networks and containers."""
    return _runner(cli, a).up(a.services, detach=a.detach, build=a.build,
                              abort_on_exit=a.abort_on_container_exit, exit_code_from=a.exit_code_from)


def down(cli, a) -> None:
    """Stop and remove the project's containers and networks."""
    _runner(cli, a).down(volumes=a.volumes)


def ps(cli, a) -> None:
    """List the project's containers."""
    from runtime.cli.output import table

    runner = _runner(cli, a)
    if a.services_only:
        for svc in runner.project.order():
            print(svc.name)
        return
    rows = runner.containers(a.services)
    if a.quiet:
        for r in rows:
            print(r["ID"])
        return
    table(["NAME", "COMMAND", "SERVICE", "STATUS", "PORTS"],
          [(r["Names"], _short(r["Command"]), r["Labels"].get("com.docker.compose.service", ""), _state(r), r["Ports"])
           for r in rows])


def _short(cmd: str) -> str:
    return cmd if len(cmd) <= 30 else cmd[:29] + "…"


def _state(row) -> str:
    if row["State"] == "running":
        return "Up"
    if row["State"] == "exited":
        return row["Status"].replace("Exited", "Exit").replace("(", "").replace(")", "")
    return row["Status"]


def logs(cli, a) -> None:
    """Show the output of the project's containers."""
    import threading

    from runtime.api.client import q
    from runtime.compose.logs import LogPrinter

    runner = _runner(cli, a)
    rows = runner.containers(a.services)
    printer = LogPrinter(r["Names"] for r in rows)
    query = {"follow": "1" if a.follow else "0"}
    if not a.follow:
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


def config(cli, a) -> None:
    """Validate the compose file and print it as netcore reads it."""
    from runtime.compose.render import config_yaml

    src, project = _project(cli, a)
    if a.services_only:
        for svc in project.order():
            print(svc.name)
    elif not a.quiet:
        sys.stdout.write(config_yaml(project, src.data))


def build(cli, a) -> None:
    """Build the images of the project's services that have a build section."""
    _runner(cli, a).build(a.services or None)


# ------------------------------------------------------------------ argparse ----


def _compose_arguments(p) -> None:
    p.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                   help="Compose file (repeatable; default compose.yaml or docker-compose.yml here or above).")
    p.add_argument("-p", "--project-name", dest="project_name", metavar="NAME",
                   help="Project name (default: the directory's name).")
    p.add_argument("--project-directory", metavar="PATH", help="Project directory (default: the first file's).")
    p.add_argument("--env-file", metavar="PATH", help="Variables file (default: .env in the project directory).")


def register(sub) -> None:
    from runtime.cli import Parser, command

    p = sub.add_parser("compose", help="Define and run multi-container applications.",
                       description="Define and run multi-container applications (docker-compose's files).",
                       arguments=_compose_arguments)
    p.set_defaults(func=lambda cli, args: p.print_help())
    verbs = p.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)

    def up_args(q) -> None:
        q.add_argument("-d", "--detach", action="store_true", help="Run containers in the background.")
        q.add_argument("--build", action="store_true", help="Build images before starting containers.")
        q.add_argument("--abort-on-container-exit", action="store_true", help="Stop all containers if any container exits.")
        q.add_argument("--exit-code-from", metavar="SERVICE", help="Return this service's exit code (implies --abort-on-container-exit).")
        q.add_argument("services", nargs="*", metavar="SERVICE")

    def down_args(q) -> None:
        q.add_argument("-v", "--volumes", action="store_true", help="Remove the named volumes of the file.")

    def ps_args(q) -> None:
        q.add_argument("-q", "--quiet", action="store_true", help="Only display IDs.")
        q.add_argument("--services", dest="services_only", action="store_true", help="Display services.")
        q.add_argument("services", nargs="*", metavar="SERVICE")

    def logs_args(q) -> None:
        q.add_argument("-f", "--follow", action="store_true", help="Follow log output.")
        q.add_argument("services", nargs="*", metavar="SERVICE")

    def config_args(q) -> None:
        q.add_argument("-q", "--quiet", action="store_true", help="Only validate the configuration, print nothing.")
        q.add_argument("--services", dest="services_only", action="store_true", help="Print the service names, one per line.")

    def build_args(q) -> None:
        q.add_argument("services", nargs="*", metavar="SERVICE")

    for name, func, args in (("up", up, up_args), ("down", down, down_args), ("ps", ps, ps_args),
                             ("logs", logs, logs_args), ("config", config, config_args), ("build", build, build_args)):
        command(verbs, name, _guard(func), args)
