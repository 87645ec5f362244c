"""Container commands: run, create, start, restart, kill, wait, attach, ps, exec, logs, stop, rm, inspect, port."""

from __future__ import annotations

import os
import sys

import click

from runtime.api.client import ApiError, q
from runtime.cli.base import INT, ArgumentError, Cli, Command, choice, option, pair, parsed, pass_cli, rest
from runtime.cli.filterflag import FORMAT_HELP, filter_option
from runtime.cli.output import each, inspect_objects

__all__ = ["run", "create", "start", "restart", "kill", "wait", "attach_", "ps", "exec_", "logs", "stop", "rm", "inspect", "container_inspect", "port",
           "network_spec", "container_options"]

# options after the first argument belong to the container's command
COMMAND_LINE = {"allow_interspersed_args": False}


def _argv(command: tuple[str, ...], name: str) -> list[str]:
    """The command after the options, ``--`` optional."""
    cmd = list(command[1:] if command[:1] == ("--",) else command)
    if not cmd:
        raise ArgumentError(f'"netcore {name}" requires at least 1 argument')
    return cmd


def network_spec(value: str) -> dict:
    """``--network NAME`` or Docker's ``--network name=NAME,alias=A,ip=IP,gw-priority=N``."""
    if "=" not in value:
        return {"name": value}
    spec: dict = {}
    for field in value.split(","):
        key, sep, val = field.partition("=")
        if not sep or not val:
            raise ValueError(f"invalid network option {field!r}")
        if key == "name":
            spec["name"] = val
        elif key == "alias":
            spec.setdefault("aliases", []).append(val)
        elif key == "ip":
            spec["ip"] = val
        elif key == "gw-priority":
            try:
                spec["gw_priority"] = int(val)
            except ValueError:
                raise ValueError(f"invalid gw-priority {val!r}: expected an integer") from None
        else:
            raise ValueError(f"unknown network option {key!r} (known: name, alias, ip, gw-priority)")
    if "name" not in spec:
        raise ValueError(f"no network name in {value!r}")
    return spec


def _portspec(parse_name: str):
    """A parser for ``-p`` / ``--expose`` in Docker's notation (runtime.portspec, loaded when used)."""

    def parse(spec: str):
        from runtime import portspec

        return getattr(portspec, parse_name)(spec)  # PortSpecError is a ValueError: the option's error

    return parse


def _mountspec(parse_name: str):
    """A parser for ``-v`` / ``--mount`` / ``--tmpfs`` (runtime.mountspec, loaded when used)."""

    def parse(spec: str):
        from runtime import mountspec

        return getattr(mountspec, parse_name)(spec)  # MountSpecError is a ValueError: the option's error

    return parse


def _runopt(parse_name: str):
    """A parser of ``runtime.runopts`` (the run flags read on the client), loaded when used."""

    def parse(spec: str):
        from runtime import runopts

        return getattr(runopts, parse_name)(spec)

    return parse


class RunCommand(Command):
    """``run [OPTIONS] IMAGE [COMMAND] [ARG...]``, and ``run [OPTIONS] -- COMMAND [ARG...]`` for
    the built-in image ``host``: click drops the ``--`` that ends the options, so it is read
    here, before click parses, as the image name ``host``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {o for p in self.params if isinstance(p, click.Option) and not (p.is_flag or p.count or p._flag_needs_value)
                       for o in p.opts + p.secondary_opts}
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                if i + 1 < len(args):
                    args = [*args[:i], "--", "host", *args[i + 1:]]
                break
            if not a.startswith("-") or a == "-":
                break  # the image: what follows is its command
            if a in takes_value:
                i += 1  # the option's value
            elif not a.startswith("--") and len(a) > 2 and f"-{a[1]}" in takes_value:
                pass  # -uVALUE
            i += 1
        return super().parse_args(ctx, args)


def _image_and_command(command: tuple[str, ...], name: str = "run") -> tuple[str, list[str]]:
    """``IMAGE [COMMAND] [ARG...]`` (``-- COMMAND`` arrives as ``host COMMAND``)."""
    if not command:
        raise ArgumentError(f'"netcore {name}" requires at least 1 argument')
    return command[0], list(command[1:])


def _run_exit_code(message: str) -> int:
    """Docker's CLI: 127 for a command that is not there, 126 for one that cannot run, else 125."""
    if message.startswith("exec: ") or ': exec: "' in message:
        return 127 if ("no such file or directory" in message or "not found" in message) else 126
    return 125


def _restart_policy(value: str) -> dict:
    """``--restart``'s value as the API's RestartPolicy (the engine checks the name)."""
    name, sep, count = value.partition(":")
    if sep and not count.lstrip("-").isdigit():
        raise ValueError("maximum retry count must be an integer")
    return {"Name": name, "MaximumRetryCount": int(count) if sep else 0}


def container_options(func):
    """The flags ``run`` and ``create`` share (Docker's), and the command after them."""
    for decorator in reversed((
        option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits."),
        option("--name", help="Assign a name to the container."),
        option("--network", "--net", "networks", multiple=True, type=parsed(network_spec, "network"), metavar="NETWORK",
               help="Connect to a network: NAME, or name=NAME[,alias=A][,ip=IP][,gw-priority=N] (repeatable; default bridge)."),
        option("--ip", metavar="IP", help="IPv4 address on the first network."),
        option("--network-alias", "aliases", multiple=True, metavar="ALIAS", help="Network-scoped alias on the first network."),
        option("-p", "--publish", multiple=True, type=parsed(_portspec("parse_publish"), "publish"), metavar="SPEC",
               help="Publish a port: [IP:][HOST_PORT:]CONTAINER_PORT[/udp], ranges allowed."),
        option("-P", "--publish-all", is_flag=True, help="Publish every exposed port to a free host port."),
        option("--expose", multiple=True, type=parsed(_portspec("parse_expose"), "expose"), metavar="PORT",
               help="Expose a port or a range of ports: PORT[-END][/udp]."),
        option("--dns", multiple=True, metavar="IP", help="Upstream DNS server for names the embedded DNS does not know."),
        option("--dns-search", multiple=True, metavar="DOMAIN", help="Set custom DNS search domains."),
        option("--dns-option", "--dns-opt", "dns_option", multiple=True, metavar="OPTION", help="Set DNS options."),
        option("--add-host", multiple=True, type=parsed(_runopt("add_host"), "host"), metavar="HOST:IP",
               help="Add a custom host-to-IP mapping (HOST:IP; IP may be host-gateway)."),
        option("-e", "--env", multiple=True, type=parsed(_runopt("env_arg"), "env"), metavar="KEY[=VALUE]",
               help="Set environment variable KEY=VALUE (KEY alone: the value here, if set)."),
        option("--env-file", multiple=True, type=parsed(_runopt("env_file"), "file"), metavar="FILE", help="Read in a file of environment variables."),
        option("-l", "--label", multiple=True, type=parsed(_runopt("labels"), "label"), metavar="KEY=VALUE", help="Set meta data on a container."),
        option("--label-file", multiple=True, type=parsed(_runopt("label_file"), "file"), metavar="FILE", help="Read in a line delimited file of labels."),
        option("-w", "--workdir", help="Working directory inside the container."),
        option("-h", "--hostname", help="Container host name (default: its short id)."),
        option("--mac-address", type=parsed(_runopt("mac_address"), "mac"), metavar="MAC", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)."),
        option("--cidfile", metavar="FILE", help="Write the container ID to the file."),
        option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes."),
        option("--stop-signal", metavar="SIGNAL", help="Signal to stop the container (default SIGTERM, or the image's STOPSIGNAL)."),
        option("--stop-timeout", type=INT, metavar="SECONDS", help="Timeout (in seconds) to stop a container (default 10)."),
        option("-m", "--memory", type=parsed(_runopt("memory"), "bytes"), metavar="BYTES", help="Memory limit (e.g. 64m, 1g)."),
        option("--cpus", type=parsed(_runopt("cpus"), "decimal"), metavar="DECIMAL", help="Number of CPUs."),
        option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
        option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        option("-v", "--volume", "volumes", multiple=True, type=parsed(_mountspec("parse_volume"), "volume"), metavar="SRC:DST[:ro]",
               help="Bind mount an absolute host path (or a named volume): SRC:DST[:ro|rw]."),
        option("--mount", "mounts", multiple=True, type=parsed(_mountspec("parse_mount"), "mount"), metavar="SPEC",
               help="Attach a filesystem mount: type=bind|volume|tmpfs,source=..,target=..[,readonly]."),
        option("--tmpfs", multiple=True, type=parsed(_mountspec("parse_tmpfs"), "tmpfs"), metavar="PATH[:OPTS]",
               help="Mount a tmpfs directory: PATH[:size=64m,mode=1777,ro]."),
        option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only."),
        option("--cap-add", multiple=True, metavar="CAP", help="Add Linux capabilities."),
        option("--cap-drop", multiple=True, metavar="CAP", help="Drop Linux capabilities."),
        option("--privileged", is_flag=True, help="Give extended privileges to this container."),
        option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached."),
        option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        option("--restart", default="no", type=parsed(_restart_policy, "restart"), metavar="POLICY",
               help="Restart policy when the container exits: no, on-failure[:N], always, unless-stopped (default no)."),
        rest("command", "IMAGE [COMMAND] [ARG...] | -- COMMAND [ARG...]"),
    )):
        func = decorator(func)
    return func


def _body(opts: dict) -> dict:
    """The create / run request from ``container_options``' values."""
    nets = [dict(n) for n in opts["networks"]] or [{"name": "bridge"}]
    if opts["ip"]:
        nets[0]["ip"] = opts["ip"]
    if opts["aliases"]:
        nets[0]["aliases"] = nets[0].get("aliases", []) + list(opts["aliases"])
    exposed: dict = {}
    bindings: dict = {}
    for e in opts["expose"]:
        exposed.update(e)
    for e, b in opts["publish"]:
        exposed.update(e)
        for key, hosts in b.items():
            bindings.setdefault(key, []).extend(hosts)
    from runtime import runopts

    policy = opts["restart"] if isinstance(opts["restart"], dict) else _restart_policy(opts["restart"])
    if opts["auto_remove"] and policy["Name"] not in ("", "no"):
        raise click.UsageError("Conflicting options: --restart and --rm")
    return {
        "Name": opts["name"],
        "Cmd": opts["cmd"],
        "WorkingDir": opts["workdir"],
        "Hostname": opts["hostname"],
        "Networks": nets,
        "AutoRemove": opts["auto_remove"],
        "ExposedPorts": exposed,
        "PortBindings": bindings,
        "PublishAllPorts": opts["publish_all"],
        "Dns": list(opts["dns"]),
        "Tty": opts["tty"],
        "OpenStdin": opts["interactive"],
        "RestartPolicy": policy,
        "Image": opts["image"],
        "Entrypoint": None if opts["entrypoint"] is None else [opts["entrypoint"]],
        "User": opts["user"],
        "Mounts": [*opts["volumes"], *opts["mounts"], *opts["tmpfs"]],
        "ReadonlyRootfs": opts["read_only"],
        "CapAdd": list(opts["cap_add"]),
        "CapDrop": list(opts["cap_drop"]),
        "Privileged": opts["privileged"],
        **runopts.body_fields(opts),
    }


def _bool(value: str) -> bool:
    """Docker's boolean flag value: ``--sig-proxy=false``."""
    if value.lower() in ("true", "1", "t"):
        return True
    if value.lower() in ("false", "0", "f"):
        return False
    raise ValueError(f"invalid boolean value {value!r}")


@click.command(cls=RunCommand, context_settings=COMMAND_LINE)
@option("-d", "--detach", is_flag=True, help="Run in the background and print the container ID.")
@option("--sig-proxy", is_flag=False, type=parsed(_bool, "bool"), default="true", flag_value="true", metavar="[=false]",
        help="Proxy received signals to the container (default true; not with -t).")
@container_options
@pass_cli
def run(cli: Cli, detach: bool, sig_proxy: bool, command: tuple[str, ...], **opts) -> None:
    """Run a command in a new container (IMAGE, or the host's root with --)."""
    image, cmd = _image_and_command(command, "run")
    body = _body({**opts, "image": image, "cmd": cmd})
    cidfile = _claim_cidfile(opts["cidfile"])
    tty, interactive = body["Tty"], body["OpenStdin"]
    client = cli.client
    # with a terminal, stdin or a restart policy: Docker's order, create, attach, wait, start
    attached = not detach and (tty or interactive or body["RestartPolicy"]["Name"] not in ("", "no"))
    if attached and tty and interactive and not os.isatty(0):
        raise click.ClickException("the input device is not a TTY")  # exit 1, as Docker
    try:
        if attached:
            body["StdinOnce"] = interactive
            cid = client.request("POST", "/containers/create", body)["Id"]
        else:
            cid = client.request("POST", "/containers/run", body)["Id"]
    except ApiError as exc:
        exc.exit_code = _run_exit_code(str(exc))  # 125: Docker's code for "the container could not be run"
        raise
    cidfile(cid)
    if detach:
        print(cid)
        return
    if attached:
        from runtime.cli import attach

        try:
            code = attach.attach_and_start(client, cid, tty=tty, stdin=interactive, start=True, sig_proxy=sig_proxy)
        except ApiError as exc:  # it could not start: nothing stays behind
            client.request("DELETE", f"/containers/{cid}", query={"force": "1"})
            exc.exit_code = _run_exit_code(str(exc))
            raise
        sys.exit(code)
    from runtime.cli import attach  # Ctrl-C reaches the container, and the client waits for its code

    proxied = attach.proxy_signals(client, cid) if sig_proxy else {}
    try:
        _print_log(client.stream(f"/containers/{cid}/logs", {"follow": "1", "stdout": "1", "stderr": "1"}), tty=False)
        code = client.request("POST", f"/containers/{cid}/wait", timeout=None)["StatusCode"]
    finally:
        attach.restore(proxied)
    sys.exit(code if code is not None else 0)


@click.command(cls=RunCommand, context_settings=COMMAND_LINE)
@container_options
@pass_cli
def create(cli: Cli, command: tuple[str, ...], **opts) -> None:
    """Create a new container (IMAGE, or the host's root with --)."""
    image, cmd = _image_and_command(command, "create")
    body = _body({**opts, "image": image, "cmd": cmd})
    cidfile = _claim_cidfile(opts["cidfile"])
    try:
        cid = cli.client.request("POST", "/containers/create", body)["Id"]
    except ApiError as exc:
        exc.exit_code = 125
        raise
    cidfile(cid)
    print(cid)


def _claim_cidfile(path: str | None):
    """``--cidfile``: refused if it exists (before anything is made); the writer of the new id."""
    from runtime import runopts

    def write(cid: str) -> None:
        try:
            runopts.write_cidfile(path, cid)
        except ValueError as exc:
            raise ApiError(0, str(exc)) from None

    try:
        runopts.claim_cidfile(path)
    except ValueError as exc:
        err = ApiError(0, str(exc))
        err.exit_code = 125
        raise err from None
    return write


@click.command(cls=Command)
@option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals.")
@option("-i", "--interactive", is_flag=True, help="Attach container's STDIN.")
@option("-t", "tty_ignored", is_flag=True, hidden=True)  # the book's `start -it`: the terminal is the container's, from create/run -t
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def start(cli: Cli, attach: bool, interactive: bool, tty_ignored: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    client = cli.client
    if attach or interactive:
        from runtime.cli import attach as session

        if len(containers) > 1:
            raise ArgumentError("you cannot start and attach multiple containers at once")  # Docker: a plain error, exit 1
        view = client.request("GET", f"/containers/{q(containers[0])}/json")
        cfg, state = view["Config"], view["State"]
        stdin = interactive and cfg["OpenStdin"]
        if cfg["Tty"] and stdin and not os.isatty(0):
            raise click.ClickException("the input device is not a TTY")  # exit 1, as Docker
        running = state["Running"] and not state["Restarting"]  # then only attach, as Docker
        sys.exit(session.attach_and_start(client, view["Id"], tty=cfg["Tty"], stdin=stdin, start=not running))
    if len(containers) == 1:  # one line, as every error
        client.request("POST", f"/containers/{q(containers[0])}/start")
        print(containers[0])
        return
    failed = []
    for c in containers:
        try:
            client.request("POST", f"/containers/{q(c)}/start")
            print(c)
        except ApiError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            failed.append(c)
    if failed:
        raise ApiError(0, "failed to start containers: " + ", ".join(failed))


@click.command(cls=Command)
@option("-t", "--time", type=INT, default=None, help="Seconds to wait for stop before killing the container (default: its --stop-timeout, else 10).")
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def restart(cli: Cli, time: int | None, containers: tuple[str, ...]) -> None:
    """Restart one or more containers."""
    query, wait = _stop_time(time)
    each(containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/restart", query=query, timeout=wait))


@click.command(cls=Command)
@option("-s", "--signal", "sig", default="KILL", metavar="SIGNAL", help='Signal to send to the container (default "KILL").')
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def kill(cli: Cli, sig: str, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    each(containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/kill", query={"signal": sig}))


@click.command(cls=Command)
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def wait(cli: Cli, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    each(
        containers,
        lambda c: cli.client.request("POST", f"/containers/{q(c)}/wait", timeout=None)["StatusCode"],
        lambda _c, code: print(code if code is not None else 0, flush=True),
    )


@click.command("attach", cls=Command)
@option("--no-stdin", is_flag=True, help="Do not attach STDIN.")
@option("--sig-proxy", is_flag=False, type=parsed(_bool, "bool"), default="true", flag_value="true", metavar="[=false]",
        help="Proxy all received signals to the process (default true; not with a terminal).")
@click.argument("container", metavar="CONTAINER")
@pass_cli
def attach_(cli: Cli, no_stdin: bool, sig_proxy: bool, container: str) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    from runtime.cli import attach

    client = cli.client
    view = client.request("GET", f"/containers/{q(container)}/json")
    if not view["State"]["Running"]:
        raise ApiError(0, "You cannot attach to a stopped container, start it first")
    if view["State"]["Restarting"]:
        raise ApiError(0, "You cannot attach to a restarting container, wait until it is running")
    cfg = view["Config"]
    stdin = cfg["OpenStdin"] and not no_stdin
    if cfg["Tty"] and stdin and not os.isatty(0):
        raise click.ClickException("the input device is not a TTY")  # exit 1, as Docker
    sys.exit(attach.attach_and_start(client, view["Id"], tty=cfg["Tty"], stdin=stdin, start=False, sig_proxy=sig_proxy))


@click.command(cls=Command)
@option("-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running).")
@filter_option()
@option("--format", "fmt", metavar="FORMAT", help=FORMAT_HELP)
@option("-n", "--last", type=INT, default=-1, metavar="N", help="Show n last created containers (includes all states) (default -1).")
@option("-l", "--latest", is_flag=True, help="Show the latest created container (includes all states).")
@option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@option("-q", "--quiet", is_flag=True, help="Only display container IDs.")
@option("-s", "--size", is_flag=True, help="Display total file sizes.")
@pass_cli
def ps(cli: Cli, **opts) -> None:
    """List containers."""
    from runtime.cli import listings

    listings.ps(cli, **opts)


@click.command("exec", cls=Command, context_settings=COMMAND_LINE)
@option("-i", "--interactive", is_flag=True, help="Keep STDIN open (without it the command reads nothing, as Docker's).")
@option("-t", "--tty", is_flag=True, help="The command runs on this terminal (-it for a shell).")
@option("-w", "--workdir", help="Working directory inside the container.")
@option("-e", "--env", multiple=True, type=pair("environment variable"), metavar="KEY=VALUE", help="Set environment variable KEY=VALUE.")
@click.argument("container", metavar="CONTAINER")
@rest("command", "[--] COMMAND [ARG...]")
@pass_cli
def exec_(cli: Cli, interactive: bool, tty: bool, workdir: str | None, env: tuple[tuple[str, str], ...],
          container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container."""
    from runtime.engine.process import ProcessInfo, exec_argv
    from runtime.engine.rootfs import RootView, resolve_user

    cmd = _argv(command, "exec")
    if tty and interactive and not os.isatty(0):
        raise click.ClickException("the input device is not a TTY")  # exit 1, as Docker
    view = cli.client.request("GET", f"/containers/{q(container)}/json")
    if not view["State"]["Running"]:
        raise ApiError(409, f"container {view['Name'].lstrip('/')} is not running")
    if view["State"].get("Restarting"):
        raise ApiError(409, f"Container {view['Id']} is restarting, wait until the container is running")
    if view["State"].get("Paused"):
        raise ApiError(409, f"Container {view['Id']} is paused, unpause the container before exec")
    info = ProcessInfo(monitor_pid=0, pid=view["State"]["Pid"], started_at=0.0)
    extra = dict(e.split("=", 1) for e in view["Config"]["Env"])
    extra.update(env)
    own = view.get("Netcore") or {}
    user = view["Config"].get("User")
    try:  # as pid 1 runs: its user (from the container's own /etc/passwd), capabilities and seccomp
        who = resolve_user(RootView((f"/proc/{info.pid}/root",)), user) if user else None
    except ValueError as exc:
        raise ApiError(0, str(exc)) from None
    caps = frozenset(own["Caps"]) if own.get("Caps") is not None else None
    argv = exec_argv(info, cmd, workdir=workdir, env=extra, user=who, caps=caps,
                     seccomp_program=own.get("SeccompProgram") or None)
    if not interactive:  # Docker attaches no stdin without -i: a `while read` loop keeps its input
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    os.execv(argv[0], argv)


def _logopt(parse_name: str):
    def parse(value: str):
        from runtime import logopts

        return getattr(logopts, parse_name)(value)

    return parse


@click.command(cls=Command)
@option("-f", "--follow", is_flag=True, help="Follow log output.")
@option("-n", "--tail", default="all", type=parsed(_logopt("tail"), "tail"), metavar="N",
        help='Number of lines to show from the end of the logs (default "all").')
@option("--since", type=parsed(_logopt("api_time"), "time"), metavar="TIME",
        help="Show logs since a timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes).")
@option("--until", type=parsed(_logopt("api_time"), "time"), metavar="TIME",
        help="Show logs before a timestamp (e.g. 2026-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes).")
@option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container", metavar="CONTAINER")
@pass_cli
def logs(cli: Cli, follow: bool, tail: str, since: str | None, until: str | None, timestamps: bool, container: str) -> None:
    """Fetch the output of a container (its stdout on stdout, its stderr on stderr)."""
    view = cli.client.request("GET", f"/containers/{q(container)}/json")
    query = {"stdout": "1", "stderr": "1", "follow": "1" if follow else "0", "tail": tail,
             "timestamps": "1" if timestamps else "0", "since": since or "", "until": until or ""}
    _print_log(cli.client.stream(f"/containers/{q(view['Id'])}/logs", query), view["Config"]["Tty"])


def _print_log(chunks, tty: bool) -> None:
    """A log stream as Docker's CLI prints it: with a terminal as it is, else split into stdout and stderr."""
    if tty:
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
            out.flush()
        return
    from runtime import logopts

    logopts.demux(chunks, sys.stdout.buffer, sys.stderr.buffer)


@click.command(cls=Command)
@option("-t", "--time", type=INT, default=None, help="Seconds to wait before killing it (default: its --stop-timeout, else 10).")
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def stop(cli: Cli, time: int | None, containers: tuple[str, ...]) -> None:
    """Stop one or more running containers."""
    query, wait = _stop_time(time)
    each(containers, lambda c: cli.client.request("POST", f"/containers/{q(c)}/stop", query=query, timeout=wait))


def _stop_time(time: int | None) -> tuple[dict, float | None]:
    """``-t``'s query and how long the client waits (unbounded: the container's own
    ``--stop-timeout`` decides, which the client does not know)."""
    if time is None:
        return {}, None
    return {"t": time}, (time + 30 if time >= 0 else None)


@click.command(cls=Command)
@option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL).")
@option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container.")
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def rm(cli: Cli, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove one or more containers."""
    query = {"force": "1" if force else "0", "v": "1" if volumes else "0"}
    each(containers, lambda c: cli.client.request("DELETE", f"/containers/{q(c)}", query=query))


@click.command(cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template: 'json', or a Go template.")
@option("--type", "type_", type=choice("container", "image", "network", "volume"), help="Only inspect objects of the given type.")
@click.argument("containers", nargs=-1, required=True, metavar="NAME|ID")
@pass_cli
def inspect(cli: Cli, fmt: str | None, type_: str | None, containers: tuple[str, ...]) -> None:
    """Return low-level information on containers, images, networks and volumes."""
    inspect_objects(cli.client, containers, type_, fmt)


@click.command("inspect", cls=Command)
@option("-f", "--format", "fmt", metavar="FORMAT", help="Format output using a custom template: 'json', or a Go template.")
@click.argument("containers", nargs=-1, required=True, metavar="CONTAINER")
@pass_cli
def container_inspect(cli: Cli, fmt: str | None, containers: tuple[str, ...]) -> None:
    """Display detailed information on one or more containers."""
    inspect_objects(cli.client, containers, "container", fmt)


@click.command(cls=Command)
@click.argument("container", metavar="CONTAINER")
@click.argument("private_port", required=False, metavar="PRIVATE_PORT[/PROTO]")
@pass_cli
def port(cli: Cli, container: str, private_port: str | None) -> None:
    """List port mappings, or look up the public port of PRIVATE_PORT[/PROTO]."""
    view = cli.client.request("GET", f"/containers/{q(container)}/json")
    ports = view["NetworkSettings"]["Ports"]
    if private_port:
        key = private_port if "/" in private_port else f"{private_port}/tcp"
        hosts = ports.get(key)
        if not hosts:
            raise ApiError(0, f"No public port '{key}' published for {view['Name'].lstrip('/')}")
        for h in hosts:
            print(f"{h['HostIp']}:{h['HostPort']}")
        return
    for key, hosts in sorted(ports.items(), key=lambda kv: (int(kv[0].split("/")[0]), kv[0])):
        for h in hosts or ():
            print(f"{key} -> {h['HostIp']}:{h['HostPort']}")
