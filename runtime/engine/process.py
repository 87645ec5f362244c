"""Container processes: start one (``Launcher``), then signal, stop, adopt and exec into it.

A container is a monitor shell that outlives the engine and a bubblewrap sandbox under it:
see ``launch`` for the command line and why. ``Launcher.start`` validates the spec, writes
nothing to the host but the container's state dir, starts the monitor detached (own
session, stdio /dev/null + the log, or the descriptors handed in), and returns once the
container's pid 1 exists. ``ProcessInfo`` (pids with their start times, against pid reuse)
is persisted so that a restarted engine re-adopts the container.

Findings (kernel 6.18, util-linux 2.38, bubblewrap 0.8, dash):

* A handler-less SIGTERM/SIGINT sent *from the host* to a pid-namespace init is dropped:
  the kernel only forces SIGKILL/SIGSTOP from an ancestor namespace.  So ``stop`` falls
  back to SIGKILL (exit 137), as Docker does; a TERM trap makes it exit cleanly.
* bwrap ``--as-pid-1`` makes the command pid 1 itself; bwrap's outer process waits for it
  and exits with its status, 128+N when killed by signal N.
* bwrap execs with ``execvp`` and exits 1 when that fails: the engine checks the command
  against the image first (``rootfs.find_command``) to fail ``run`` with Docker's line.
* With many netns in /run/netns, ``unshare --mount`` of the engine's namespace costs more
  with each (docs/performance.md): hence the mount template (``mounttemplate``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Mapping, Sequence

from runtime.engine import execwait, launch, pidfd, seccomp
from runtime.engine.mounttemplate import MountTemplate
from runtime.engine.rootfs import ExecError, RootView, User, find_command

__all__ = ["DEFAULT_PATH", "Mount", "ProcessSpec", "ProcessInfo", "ProcessError", "StartError",
           "NotRunningError", "Launcher", "stop", "kill", "is_running", "read_exit_code",
           "load", "log_path", "exec_argv", "raise_fd_limit", "SETUSER"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NSENTER = "/usr/bin/nsenter"
_MARKER = "NETCORE_SETUP=1"  # env of the monitor and bwrap only: gone once the command is exec'd
_NOFILE = "NETCORE_NOFILE"  # the open-files soft limit containers get (the engine's before raise_fd_limit)
SETUSER = os.path.join(sys.prefix, "libexec", "netcore-setuser")  # built by scripts/setup.sh
_SETUSER_IN = "/dev/.netcore-setuser"


class ProcessError(RuntimeError):
    """Base class of supervisor errors."""


class StartError(ProcessError):
    """The container could not be started (bad spec, namespace or setup failure)."""


class CommandError(StartError):
    """The container's command cannot be run; ``code``: Docker's exit code for it (127, 126)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NotRunningError(ProcessError):
    """The container's process is gone."""


@dataclass(frozen=True)
class Mount:
    """A mount in the container: ``bind`` of a host path, or a fresh ``tmpfs``."""
    target: str
    type: str = "bind"
    source: str = ""
    readonly: bool = False
    size: int | None = None  # tmpfs: bytes
    mode: int | None = None  # tmpfs: permissions of its root


@dataclass(frozen=True)
class ProcessSpec:
    container_id: str
    argv: Sequence[str]
    env: Mapping[str, str]
    workdir: str | None
    hostname: str | None  # None: share the host UTS namespace
    netns_path: str | None  # None: share the host network namespace
    bind_files: Mapping[str, str]  # container path -> host file, bind-mounted read-write
    state_dir: str
    layers: Sequence[str] | None = None  # the image's layer dirs, lowest first; None: the host's root, read-only
    read_only: bool = False  # the container's root read-only (mounts stay as they are)
    mounts: Sequence[Mount] = ()
    user: User | None = None  # None: root
    caps: frozenset[str] = launch.DEFAULT_CAPS
    privileged: bool = False  # every capability, no seccomp, no masked paths, the host's /dev, /sys read-write
    hide: Sequence[str] = ()  # host paths an empty tmpfs covers in a host-image container (the engine's root, its socket)
    # stdin, stdout, stderr of the container (a pty's or pipes' ends for -i/-t); None: /dev/null and the log
    # With tty, stdin may be the pty's master: the monitor keeps it for the container's life
    # (launch.TTY_MASTER_FD) and the container's stdin is its stdout, the slave.
    stdio: tuple[int, int, int] | None = field(default=None, compare=False)
    tty: bool = False  # stdin is a terminal: pid 1 gets it as its controlling terminal, in a session of its own


@dataclass(frozen=True)
class ProcessInfo:
    monitor_pid: int
    pid: int  # host pid of the container's pid 1
    started_at: float
    monitor_start: int = 0  # start times (clock ticks, /proc/<pid>/stat) to detect pid reuse
    pid_start: int = 0  # -1: pid 1 was gone before its start time could be read


def log_path(state_dir: str) -> str:
    return os.path.join(state_dir, "log")


def upper_dirs(state_dir: str) -> tuple[str, str]:
    """The container's overlayfs upper and work dirs: they keep its changes across stop/start."""
    return os.path.join(state_dir, "upper"), os.path.join(state_dir, "work")


def raise_fd_limit() -> int:
    """Lift the engine's soft RLIMIT_NOFILE to its hard limit, as dockerd and containerd do;
    containers started afterwards keep the soft limit the engine had (passed to them in
    ``NETCORE_NOFILE``). Returns the new limit.

    The engine holds a few descriptors per container (the watcher's pidfd, the embedded
    DNS's listeners): under systemd's default soft limit of 1024 it would run out at a
    few hundred containers.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
        return soft
    os.environ.setdefault(_NOFILE, str(soft))
    return hard


class Launcher:
    """Starts containers. Holds what is made once per engine: the mount template and the
    compiled seccomp programs (files under ``cache_dir``, one per capability set)."""

    def __init__(self, cache_dir: str, setuser: str = SETUSER) -> None:
        self.cache_dir = cache_dir
        self.setuser = setuser
        self.template = MountTemplate()
        self._profile: dict | None = None
        self._programs: dict[frozenset[str], str] = {}

    def seccomp_program(self, caps: frozenset[str]) -> str:
        """The file holding Docker's default seccomp profile compiled for ``caps``."""
        path = self._programs.get(caps)
        if path is None:
            if self._profile is None:
                self._profile = seccomp.load_profile()
            data = seccomp.compile_profile(self._profile, caps)
            os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
            key = hashlib.sha256(" ".join(sorted(caps)).encode()).hexdigest()[:16]
            path = os.path.join(self.cache_dir, f"seccomp-{key}.bpf")
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            self._programs[caps] = path
        return path

    def argv(self, spec: ProcessSpec, start_fd: int, seccomp_fd: int | None) -> list[str]:
        """The whole command line (validated); ``start_fd``: the start pipe's descriptor in
        the monitor, ``seccomp_fd``: the seccomp program's (None: no seccomp, privileged).
        See ``launch``."""
        cid, h = spec.container_id, spec.hostname
        if not spec.argv or not spec.argv[0] or "=" in spec.argv[0]:
            raise StartError(f"{cid}: invalid command {list(spec.argv)[:1]}")
        if any(not k or "=" in k or "\0" in k + v for k, v in spec.env.items()):
            raise StartError(f"{cid}: invalid environment variable name")
        if h is not None and (not h or len(h) > 64 or any(c.isspace() or c == "/" for c in h)):
            raise StartError(f"{cid}: invalid hostname {h!r}")
        if spec.netns_path is not None and not os.path.exists(spec.netns_path):
            raise StartError(f"{cid}: network namespace not found: {spec.netns_path}")
        sd = spec.state_dir
        overlay = ""
        if spec.layers is not None:
            if not spec.layers:
                raise StartError(f"{cid}: an image needs at least one layer")
            upper, work = upper_dirs(sd)
            for d in (*spec.layers, upper, work):
                if any(c in d for c in ",:\n") or not os.path.isabs(d):
                    raise StartError(f"{cid}: unusable layer path {d!r}")
            overlay = f"lowerdir={':'.join(reversed(spec.layers))},upperdir={upper},workdir={work}"
        view = RootView((upper_dirs(sd)[0], *reversed(spec.layers)) if spec.layers is not None else ("/",))
        workdir = spec.workdir or "/"
        if not workdir.startswith("/"):
            raise StartError(f"{cid}: the working directory '{workdir}' is invalid, it needs to be an absolute path")
        if spec.layers is None and not view.is_dir(workdir):
            raise StartError(f"{cid}: can't cd to {workdir}: no such directory in the host image")
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": h or socket.gethostname(), **spec.env}
        if spec.layers is None or view.is_dir(workdir):  # else it is made, and a relative command is not there
            binds = {**{m.target: m.source for m in spec.mounts if m.type == "bind"}, **spec.bind_files}
            try:  # the command may be in a bind mount (-v)
                find_command(execwait.mounted_view(view, binds), spec.argv[0], env["PATH"], workdir)
            except ExecError as exc:
                raise CommandError(f"{cid}: {exc}", exc.code) from None
        # --die-with-parent: a killed bwrap (monitors.stop) takes the container with it
        args: list[str] = ["--unshare-pid", "--unshare-ipc", "--as-pid-1", "--die-with-parent"]
        if h is not None:
            args += ["--unshare-uts", "--hostname", h]
        args.append("--clearenv")
        for k, v in env.items():
            args += ["--setenv", k, v]
        if spec.layers is not None:
            args += ["--bind", f"{sd}/rootfs", "/"]
        else:
            # /run holds the host's sockets (a read-only mount does not stop a connect()): a fresh one
            args += ["--ro-bind", "/", "/", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/var/tmp",
                     "--perms", "0755", "--tmpfs", "/run"]
            args += [a for p in spec.hide if os.path.isdir(p) for a in ("--tmpfs", p)]
        args += ["--proc", "/proc"]
        if spec.privileged:
            args += ["--dev-bind", "/dev", "/dev", "--bind", f"{sd}/sys", "/sys"]
        else:
            args += ["--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--mqueue", "/dev/mqueue",
                     "--ro-bind", f"{sd}/sys", "/sys", *launch.masks()]
        for dst, src in spec.bind_files.items():
            # the host image is read-only: a mount point there must exist already
            if not os.path.isabs(dst) or not os.path.exists(src) or (spec.layers is None and not _host_target(dst)):
                raise StartError(f"{cid}: bad bind mount {src} -> {dst}")
            args += ["--bind", src, dst]
        for m in spec.mounts:
            if not os.path.isabs(m.target):
                raise StartError(f"{cid}: invalid mount path: '{m.target}' mount path must be absolute")
            if m.type == "bind":
                if not os.path.exists(m.source):
                    raise StartError(f"{cid}: invalid mount config: bind source path does not exist: {m.source}")
                if spec.layers is None and not _host_target(m.target):
                    raise StartError(f"{cid}: invalid mount config: mount point {m.target} does not exist in the host image")
                args += ["--ro-bind" if m.readonly else "--bind", m.source, m.target]
            elif m.type == "tmpfs":
                args += ["--perms", f"{m.mode if m.mode is not None else 0o1777:o}"]
                args += ["--size", str(m.size)] if m.size else []
                args += ["--tmpfs", m.target] + (["--remount-ro", m.target] if m.readonly else [])
            else:
                raise StartError(f"{cid}: unsupported mount type {m.type!r}")
        if spec.layers is not None:  # a missing working dir is made (Docker's), before the root goes read-only
            args += ["--dir", workdir] + (["--remount-ro", "/"] if spec.read_only else [])
        caps = launch.ALL_CAPS if spec.privileged else frozenset(spec.caps)
        args += ["--cap-drop", "ALL", *(a for c in sorted(caps) for a in ("--cap-add", c))]
        if not spec.privileged:
            if seccomp_fd is None:
                raise StartError(f"{cid}: no seccomp program")
            args += ["--seccomp", str(seccomp_fd)]
        args += ["--chdir", workdir]
        command = list(spec.argv)
        u = spec.user or User(0, 0)
        if spec.tty or (u.uid, u.gid, u.groups) != (0, 0, ()):
            if not os.access(self.setuser, os.X_OK):
                raise StartError(f"{cid}: {self.setuser} is missing (scripts/setup.sh builds it)")
            args += ["--ro-bind", self.setuser, _SETUSER_IN]
            command = [_SETUSER_IN, *(["-t"] if spec.tty else []), str(u.uid), str(u.gid),
                       ",".join(map(str, u.groups)) or "-", *command]
        sysfs = "rw,nosuid,nodev,noexec" if spec.privileged else "ro,nosuid,nodev,noexec"
        return [*launch.prefix(spec.netns_path, self.template.path()), sd, overlay, sysfs,
                "--info-fd", str(start_fd), *args, "--", *command]

    def start(self, spec: ProcessSpec, timeout: float = 10.0) -> ProcessInfo:
        """Start the container detached; return once its pid 1 runs the command (its final
        execve done: a command that cannot be run is ``CommandError``, see ``execwait``)."""
        r, w = os.pipe()
        prog = None
        try:
            if not spec.privileged:
                prog = os.open(self.seccomp_program(frozenset(spec.caps)), os.O_RDONLY | os.O_CLOEXEC)
            argv = self.argv(spec, w, prog)  # validates before anything is made
        except BaseException:
            for fd in (r, w, prog):
                if fd is not None:
                    os.close(fd)
            raise
        sd = spec.state_dir
        os.makedirs(sd, exist_ok=True)
        for d in ("rootfs", "sys", *((upper_dirs(sd)) if spec.layers is not None else ())):
            os.makedirs(os.path.join(sd, d), mode=0o755, exist_ok=True)
        for name in ("exit_code", "exit_code.tmp", "process.json"):
            if os.path.lexists(p := os.path.join(sd, name)):
                os.unlink(p)
        logf = os.open(log_path(sd), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        log_offset = os.fstat(logf).st_size
        stdin, stdout, stderr = spec.stdio or (subprocess.DEVNULL, logf, logf)
        env = {k: v for k, v in (_MARKER.split("="), (_NOFILE, os.environ.get(_NOFILE, "")), ("NETCORE_TTY", "1" if spec.tty else "")) if v}
        try:
            # close_fds: nothing of the engine's reaches the container but its stdio; the
            # start pipe and the seccomp program are bwrap's, which closes them in the container
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd="/",
                                    env=env, start_new_session=True, pass_fds=(w,) if prog is None else (w, prog))
        except OSError as e:
            os.close(r)
            raise StartError(f"{spec.container_id}: cannot launch: {e}") from None
        finally:
            os.close(w)
            os.close(logf)
            if prog is not None:
                os.close(prog)
        pid = proc.pid
        proc.returncode = 0  # reaped through its pidfd (ExitWatcher, stop), never by subprocess
        started_at = time.time()
        monitor_start = (pidfd.stat(pid) or ("", 0))[1]  # unreaped child: its pid cannot be reused
        mon = os.pidfd_open(pid)
        data, deadline, child = b"", time.monotonic() + timeout, None
        try:
            while child is None and pidfd.wait_fd(r, deadline - time.monotonic()):
                if not (chunk := os.read(r, 4096)):
                    break  # EOF: setup failed, the reason is in the log
                data += chunk
                try:
                    child = int(json.loads(data)["child-pid"])
                except (ValueError, KeyError, TypeError):
                    continue
        finally:
            os.close(r)
        if child is None:
            try:
                if not pidfd.wait_fd(mon, 1.0):
                    os.killpg(pid, signal.SIGKILL)
                    pidfd.wait_fd(mon, 5.0)
                pidfd.reap(mon)
            finally:
                os.close(mon)
            with open(log_path(sd), "rb") as f:
                f.seek(log_offset)
                tail = f.read().decode(errors="replace").strip().splitlines()
            raise StartError(f"{spec.container_id}: {tail[-1] if tail else 'start timed out'}")
        try:  # Docker's run fails if the command cannot be run: wait for its execve (execwait)
            helper = os.stat(self.setuser) if _SETUSER_IN in argv else None  # pid 1 execs it first
            if not execwait.exec_done(child, _MARKER.encode(), (helper.st_dev, helper.st_ino) if helper else None):
                self._raise_exec_failure(spec, mon, log_offset)
        finally:
            os.close(mon)
        st = pidfd.stat(child)
        info = ProcessInfo(pid, child, started_at, monitor_start, st[1] if st else -1)
        tmp = os.path.join(sd, "process.json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(info), f)
        os.replace(tmp, os.path.join(sd, "process.json"))
        return info

    @staticmethod
    def _raise_exec_failure(spec: ProcessSpec, mon: int, log_offset: int) -> None:
        """pid 1 died before its command ran: CommandError (the monitor reaped) if it could
        not be run, else nothing (it ran and ended already: the exit watcher reports it)."""
        if not pidfd.wait_fd(mon, 2.0):
            return
        code = read_exit_code(spec.state_dir)
        try:
            with open(log_path(spec.state_dir), "rb") as f:
                f.seek(log_offset)
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        why = execwait.failure(code, lines[-1] if lines else "", spec.argv[0])
        if why is not None:
            pidfd.reap(mon)
            raise CommandError(f"{spec.container_id}: {why[0]}", why[1])


def _host_target(path: str) -> bool:
    """A mount point in the host image: an existing path, or one under its fresh /tmp, /var/tmp or /run."""
    return os.path.exists(path) or path.startswith(("/tmp/", "/var/tmp/", "/run/"))


def read_exit_code(state_dir: str) -> int | None:
    try:
        with open(os.path.join(state_dir, "exit_code")) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def load(state_dir: str) -> ProcessInfo | None:
    """The ProcessInfo persisted by ``start``, to re-adopt a container after a restart."""
    try:
        with open(os.path.join(state_dir, "process.json")) as f:
            data = json.load(f)
        return ProcessInfo(**{k.name: data[k.name] for k in fields(ProcessInfo) if k.name in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def is_running(info: ProcessInfo) -> bool:
    """Pid 1 is alive and is still our process (start time guards against pid reuse)."""
    st = pidfd.stat(info.pid)
    return st is not None and st[0] != "Z" and (not info.pid_start or st[1] == info.pid_start)


def kill(info: ProcessInfo, sig: int = signal.SIGKILL) -> None:
    """Signal pid 1.  The kernel drops handler-less signals other than KILL/STOP."""
    fd = pidfd.pidfd(info.pid, info.pid_start)
    try:
        if fd is None:
            raise ProcessLookupError
        signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        raise NotRunningError(f"container process {info.pid} is not running") from None
    finally:
        if fd is not None:
            os.close(fd)


def stop(info: ProcessInfo, timeout: float = 10.0) -> None:
    """SIGTERM, SIGKILL after ``timeout``; returns once the exit code is recorded."""
    mon = pidfd.pidfd(info.monitor_pid, info.monitor_start)
    fd = pidfd.pidfd(info.pid, info.pid_start)
    try:
        if fd is not None:
            try:
                signal.pidfd_send_signal(fd, signal.SIGTERM)
                if not pidfd.wait_fd(fd, timeout):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if mon is not None:
            if not pidfd.wait_fd(mon, 5.0):
                raise ProcessError(f"monitor {info.monitor_pid} did not exit after SIGKILL")
            pidfd.reap(mon)
    finally:
        for x in (fd, mon):
            if x is not None:
                os.close(x)


def exec_argv(info: ProcessInfo, argv: Sequence[str], workdir: str | None = None,
              env: Mapping[str, str] | None = None, user: User | None = None,
              caps: frozenset[str] | None = None, seccomp_program: str | None = None,
              setuser: str = SETUSER) -> list[str]:
    """nsenter argv running ``argv`` in the container as its pid 1 runs: its namespaces and
    root, its env updated by ``env``, ``user``, and, when given, only ``caps``, no_new_privs
    and the seccomp program (a file of ``Launcher.seccomp_program``). The static helper
    (``netcore-setuser``) does the switch inside; it and the program are passed as inherited
    descriptors, since neither is in the container's root. Default workdir: pid 1's cwd."""
    deadline = time.monotonic() + 2.0
    while True:  # start() returns before pid 1's final execve; wait for its environ
        if not is_running(info):
            raise NotRunningError(f"container process {info.pid} is not running")
        try:
            with open(f"/proc/{info.pid}/environ", "rb") as f:
                raw = f.read().decode(errors="replace").split("\0")
        except OSError:
            raw = []
        if (len(raw) > 1 and _MARKER not in raw) or time.monotonic() > deadline:
            break
        time.sleep(0.0005)
    cenv = dict(kv.split("=", 1) for kv in raw if "=" in kv and kv != _MARKER)
    cenv = {"PATH": DEFAULT_PATH, **cenv, **(env or {})}
    helper = os.open(setuser, os.O_RDONLY)  # inherited by nsenter: exec'd as /proc/self/fd/N inside
    os.set_inheritable(helper, True)
    opts: list[str] = []
    if caps is not None:
        opts += ["-n", "-c", f"{sum(1 << launch.CAP_NUMBERS[c] for c in caps if c in launch.CAP_NUMBERS):x}"]
    if seccomp_program:
        prog = os.open(seccomp_program, os.O_RDONLY)
        os.set_inheritable(prog, True)
        opts += ["-s", str(prog)]
    opts += [a for k, v in cenv.items() for a in ("-e", f"{k}={v}")]
    u = user or User(0, 0)
    return [_NSENTER, f"--target={info.pid}", "--net", "--uts", "--ipc", "--mount", "--pid",
            "--root", f"--wd={workdir}" if workdir else "--wd", "--", f"/proc/self/fd/{helper}", *opts,
            str(u.uid), str(u.gid), ",".join(map(str, u.groups)) or "-", *argv]
