"""Container process supervisor.

A container is ``nsenter [--net=NETNS] --mount=TEMPLATE unshare --ipc --mount --pid [--uts]
sh -c SCRIPT``: util-linux does the namespace work after exec, so the threaded engine needs
no ``preexec_fn``.  TEMPLATE is the engine's mount namespace without ``/run/netns`` (see
``_mount_template``): a copy of the engine's own would carry one mount per sandbox.  That
monitor shell is in the container's namespaces except pid; its first child becomes pid 1
of the new pid namespace, sets the hostname, cwd, /proc and bind mounts up and execs the
command with exactly the container env.  The monitor then writes ``state_dir/exit_code``
atomically.  It has its own session and its stdio is /dev/null and the log (the start pipe
is only read inside start()), so it outlives an engine SIGKILL.

Findings (kernel 6.18, util-linux 2.38, dash):

* A handler-less SIGTERM/SIGINT sent *from the host* to a pid-namespace init is dropped:
  the kernel only forces SIGKILL/SIGSTOP from an ancestor namespace.  So ``stop`` falls
  back to SIGKILL (exit 137), as Docker does; a TERM trap makes it exit cleanly.
* ``unshare --fork`` turns a child killed by SIGKILL into exit status 1 ("sigprocmask
  unblock failed"), hence the monitor shell forks pid 1 itself and gets a real 128+N.
* Once pid 1 is gone the namespace cannot fork ("Cannot fork"): the monitor ends with
  ``exec mv`` and never forks after the container.
* dash resets and re-exports IFS and exports PWD/OLDPWD, so the env goes via ``env -i``.
* With 1000 netns in /run/netns, ``unshare --mount`` of the engine's namespace took 6 ms
  instead of 2.5, and each new netns mount 12 ms instead of 1.5 with 1000 containers
  holding slave copies of /run/netns: hence the template.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import resource
import select
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Callable, Mapping, Sequence

from netcore.osl.netns import NETNS_DIR

__all__ = ["DEFAULT_PATH", "ProcessSpec", "ProcessInfo", "ProcessError", "StartError",
           "NotRunningError", "start", "stop", "kill", "is_running", "read_exit_code",
           "load", "log_path", "exec_argv", "ExitWatcher", "raise_fd_limit", "TTY_MASTER_FD"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SH, _NSENTER, _UNSHARE, _ENV = "/bin/sh", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/env"
_FD_SETSIZE = 1024
TTY_MASTER_FD = 4  # where a container's monitor keeps its pty master (see _SCRIPT)
_MARKER = "NETCORE_SETUP=1"  # env of the setup shell only: gone once the command is exec'd
_NOFILE = "NETCORE_NOFILE"  # setup shell env: the open-files soft limit the container gets
_container_nofile: int | None = None  # set by raise_fd_limit(): the limit the engine started with

# Monitor: stdout is the start pipe to the engine; it becomes fd 3 and stdout joins stderr in
# the log.  The ( ) subshell is forked without exec and becomes pid 1.  /proc is still the
# host's there, so /proc/self/stat is its host-side pid and start time; that goes to the
# engine once the cheap, fallible setup is done.  The mounts run after it (fork+exec each,
# ~1 ms apiece here, and checked up front), then the command is exec'd.
# With a terminal (NETCORE_TTY, the pty slave's path) the monitor's stdin is the pty master: it
# keeps it on fd 4 for the container's life (an engine restarted meanwhile takes a copy back
# with pidfd_getfd, see TTY_MASTER_FD); pid 1 opens the slave before the mounts, makes it its
# stdin, stdout and stderr and its controlling terminal (setsid -c: the subshell is no group
# leader, so setsid does not fork).  Without one, the monitor's stdin (/dev/null, or the read
# end of the engine's stdin pipe for -i) is pid 1's.
# Args: $1 state dir $2 hostname ("" = keep) $3 workdir $4 bind count, (src dst)..., K=V..., argv
_SCRIPT = """exec 3>&1 1>&2
[ -z "$NETCORE_TTY" ] || exec 4<&0 0</dev/null
(
set -e
[ -z "$NETCORE_NOFILE" ] || ulimit -S -n "$NETCORE_NOFILE"
[ -z "$NETCORE_TTY" ] || exec 5<>"$NETCORE_TTY" 4>&-
IFS= read -r s < /proc/self/stat
[ -z "$2" ] || printf '%s' "$2" > /proc/sys/kernel/hostname
cd -- "$3"
printf '%s\\n' "$s" >&3
exec 3>&-
/bin/mount -t proc -o nosuid,nodev,noexec proc /proc
n=$4; shift 4
while [ "$n" -gt 0 ]; do /bin/mount --bind -- "$1" "$2"; shift 2; n=$((n - 1)); done
[ -z "$NETCORE_TTY" ] || exec 0<&5 1>&5 2>&5 5>&-
exec ${NETCORE_TTY:+/usr/bin/setsid -c} /usr/bin/env -i -- "$@"
)
printf '%s\\n' $? > "$1/exit_code.tmp"
exec /bin/mv -f "$1/exit_code.tmp" "$1/exit_code" 3>&-
"""


class ProcessError(RuntimeError):
    """Base class of supervisor errors."""


class StartError(ProcessError):
    """The container could not be started (bad spec, namespace or setup failure)."""


class NotRunningError(ProcessError):
    """The container's process is gone."""


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
    stdin: int | None = None  # pid 1's stdin (a pipe's read end); with ``tty``: the pty master, kept by the monitor
    tty: str | None = None  # the pty slave's path: pid 1's stdin, stdout, stderr and controlling terminal


@dataclass(frozen=True)
class ProcessInfo:
    monitor_pid: int
    pid: int  # host pid of the container's pid 1
    started_at: float
    monitor_start: int = 0  # start times (clock ticks, /proc/<pid>/stat) to detect pid reuse
    pid_start: int = 0


_children: dict[int, subprocess.Popen] = {}  # our monitors, kept to be reaped (no zombies)
_children_lock = threading.Lock()


def log_path(state_dir: str) -> str:
    return os.path.join(state_dir, "log")


def _parse_stat(data: bytes) -> tuple[int, str, int]:
    """(pid, state, start ticks) from a /proc/<pid>/stat line (comm may contain spaces)."""
    rest = data[data.rindex(b")") + 2:].split()
    return int(data.split(None, 1)[0]), rest[0].decode(), int(rest[19])


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return _parse_stat(f.read())[1:]
    except (OSError, ValueError, IndexError):
        return None


def _pidfd(pid: int, start_ticks: int) -> int | None:
    """A pidfd for ``pid`` if it is (still) the process that started at ``start_ticks``."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    st = _stat(pid)  # checked after opening, so a match pins the fd to the right process
    if st is None or (start_ticks and st[1] != start_ticks):
        os.close(fd)
        return None
    return fd


def _wait_fd(fd: int, timeout: float) -> bool:
    """Readable within ``timeout`` (poll, not select: fds may exceed FD_SETSIZE)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(max(timeout, 0) * 1000))


def _above_select_range(fd: int) -> int:
    """``fd`` moved to a descriptor >= FD_SETSIZE (1024) if the limit allows, else as is.

    The watcher holds one pidfd per container for the container's life: on the lowest
    free descriptors they would push the engine's short-lived ones past 1023, where a
    library that still uses ``select()`` (libnftables) aborts the process.
    """
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FD_SETSIZE)
    except OSError:  # RLIMIT_NOFILE at or below FD_SETSIZE
        return fd
    os.close(fd)
    return high


def _reap(pid: int, pidfd: int) -> None:
    """Collect an exited monitor if it is our child (or adopted by us as subreaper)."""
    with _children_lock:
        proc = _children.pop(pid, None)
    if proc is not None:
        proc.poll()
        return
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass


def raise_fd_limit() -> int:
    """Lift the engine's soft RLIMIT_NOFILE to its hard limit, as dockerd and containerd do;
    containers started afterwards keep the soft limit the engine had. Returns the new limit.

    The engine holds a few descriptors per container (the watcher's pidfd, the embedded
    DNS's listeners): under systemd's default soft limit of 1024 it would run out at a
    few hundred containers.
    """
    global _container_nofile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
        return soft
    if _container_nofile is None:
        _container_nofile = soft
    return hard


def _setup_env(spec: ProcessSpec) -> dict[str, str]:
    key, value = _MARKER.split("=")
    env = {key: value}
    if spec.tty:
        env["NETCORE_TTY"] = spec.tty
    if _container_nofile is not None:
        env[_NOFILE] = str(_container_nofile)
    return env


_template_lock = threading.Lock()
_template: str | None = None  # /proc/<engine pid>/fd/<fd>: the containers' mount template
_template_failed = False


def _mount_template() -> str | None:
    """The mount namespace containers are copied from: the engine's, minus ``/run/netns``.

    Every sandbox's netns is a bind mount in the shared ``/run/netns``. Copying the
    engine's namespace for a container would copy all of them (O(sandboxes) per start),
    and the container's slave copy of ``/run/netns`` would then receive every later
    sandbox's mount and unmount (O(containers) per sandbox): kernel work that grows with
    the number of containers. Containers never use ``/run/netns`` (nsenter opens the
    netns before entering anything), so they are made from a namespace where it is
    detached, made once per engine process and held by a descriptor: it goes when the
    engine goes. It is a slave of the engine's mounts, so shared mounts made later on
    the host propagate into new containers; a private mount made after it does not.

    Made once ``/run/netns`` is a mount point (there is nothing to hide before);
    None: no template (no netns yet, or it could not be made), copy the engine's.
    """
    global _template, _template_failed
    with _template_lock:
        if _template is None and not _template_failed and _is_mount_point(NETNS_DIR):
            try:
                _template = _make_template()
            except (OSError, ProcessError) as exc:
                _template_failed = True
                log.warning("containers copy the engine's mount namespace, /run/netns included: %s", exc)
        return _template


def _is_mount_point(path: str) -> bool:
    """From mountinfo: os.path.ismount misses a directory bind-mounted onto itself."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split(" ", 5)[4] == path for line in f)
    except OSError:
        return False


def _make_template() -> str:
    """A helper detaches /run/netns in a new mount namespace; the engine keeps a descriptor."""
    helper = subprocess.Popen(
        [_UNSHARE, "--mount", "--propagation", "slave", "--", _SH, "-c",
         f"/bin/umount -l {NETNS_DIR} && echo ready && read _"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    assert helper.stdin is not None and helper.stdout is not None and helper.stderr is not None
    fd = None
    try:
        if _wait_fd(helper.stdout.fileno(), 10.0) and helper.stdout.readline() == b"ready\n":
            fd = _above_select_range(os.open(f"/proc/{helper.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
    finally:
        helper.kill()
        helper.wait()
        why = helper.stderr.read().decode(errors="replace").strip()
        for f in (helper.stdin, helper.stdout, helper.stderr):
            f.close()
    if fd is None:
        raise ProcessError(f"mount template: {why or 'the helper did not answer'}")
    return f"/proc/{os.getpid()}/fd/{fd}"


def _launch_argv(spec: ProcessSpec) -> list[str]:
    cid, h = spec.container_id, spec.hostname
    if not spec.argv or not spec.argv[0] or "=" in spec.argv[0]:
        raise StartError(f"{cid}: invalid command {list(spec.argv)[:1]}")
    if any(not k or "=" in k or "\0" in k + v for k, v in spec.env.items()):
        raise StartError(f"{cid}: invalid environment variable name")
    if h is not None and (not h or len(h) > 64 or any(c.isspace() or c == "/" for c in h)):
        raise StartError(f"{cid}: invalid hostname {h!r}")
    if spec.netns_path is not None and not os.path.exists(spec.netns_path):
        raise StartError(f"{cid}: network namespace not found: {spec.netns_path}")
    for dst, src in spec.bind_files.items():
        # the container sees the host root, so the mount point must exist on the host
        if not os.path.isabs(dst) or not os.path.exists(src) or not os.path.exists(dst):
            raise StartError(f"{cid}: bad bind mount {src} -> {dst}")
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": h or socket.gethostname(), **spec.env}
    enter = [f"--net={spec.netns_path}"] if spec.netns_path else []
    template = _mount_template()
    enter += [f"--mount={template}"] if template else []
    argv = [_NSENTER, *enter, "--"] if enter else []
    argv += [_UNSHARE, "--ipc", "--mount", "--pid", "--propagation", "slave"]
    argv += ["--uts"] if h is not None else []
    return argv + ["--", _SH, "-c", _SCRIPT, "netcore-init", spec.state_dir, h or "",
                   spec.workdir or "/", str(len(spec.bind_files)),
                   *(p for dst, src in spec.bind_files.items() for p in (src, dst)),
                   *(f"{k}={v}" for k, v in env.items()), *spec.argv]


def start(spec: ProcessSpec, timeout: float = 10.0) -> ProcessInfo:
    """Start the container detached; return once its pid 1 is known (hostname and workdir
    set; mounts and the final exec follow within milliseconds)."""
    argv = _launch_argv(spec)
    os.makedirs(spec.state_dir, exist_ok=True)
    for name in ("exit_code", "exit_code.tmp", "process.json"):
        if os.path.lexists(p := os.path.join(spec.state_dir, name)):
            os.unlink(p)
    logf = os.open(log_path(spec.state_dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    log_offset = os.fstat(logf).st_size
    r, w = os.pipe()
    try:
        stdin = subprocess.DEVNULL if spec.stdin is None else spec.stdin
        proc = subprocess.Popen(argv, stdin=stdin, stdout=w, stderr=logf, cwd="/",
                                env=_setup_env(spec), start_new_session=True)
    except OSError as e:
        os.close(r)
        raise StartError(f"{spec.container_id}: cannot launch: {e}") from None
    finally:
        os.close(w)
        os.close(logf)
    started_at = time.time()
    monitor_start = (_stat(proc.pid) or ("", 0))[1]  # unreaped child: its pid cannot be reused
    with _children_lock:
        _children[proc.pid] = proc
    line, deadline = b"", time.monotonic() + timeout
    try:
        while not line.endswith(b"\n") and _wait_fd(r, deadline - time.monotonic()):
            if not (chunk := os.read(r, 256)):
                break  # EOF: setup failed, the reason is in the log
            line += chunk
    finally:
        os.close(r)
    if not line.endswith(b"\n"):
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with _children_lock:
            _children.pop(proc.pid, None)
        with open(log_path(spec.state_dir), "rb") as f:
            f.seek(log_offset)
            tail = f.read().decode(errors="replace").strip().splitlines()
        raise StartError(f"{spec.container_id}: {tail[-1] if tail else 'start timed out'}")
    pid, _, pid_start = _parse_stat(line)
    info = ProcessInfo(proc.pid, pid, started_at, monitor_start, pid_start)
    tmp = os.path.join(spec.state_dir, "process.json.tmp")
    with open(tmp, "w") as f:
        json.dump(asdict(info), f)
    os.replace(tmp, os.path.join(spec.state_dir, "process.json"))
    return info


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
    st = _stat(info.pid)
    return st is not None and st[0] != "Z" and (not info.pid_start or st[1] == info.pid_start)


def kill(info: ProcessInfo, sig: int = signal.SIGKILL) -> None:
    """Signal pid 1.  The kernel drops handler-less signals other than KILL/STOP."""
    fd = _pidfd(info.pid, info.pid_start)
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
    mon = _pidfd(info.monitor_pid, info.monitor_start)
    fd = _pidfd(info.pid, info.pid_start)
    try:
        if fd is not None:
            try:
                signal.pidfd_send_signal(fd, signal.SIGTERM)
                if not _wait_fd(fd, timeout):
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if mon is not None:
            if not _wait_fd(mon, 5.0):
                raise ProcessError(f"monitor {info.monitor_pid} did not exit after SIGKILL")
            _reap(info.monitor_pid, mon)
    finally:
        for x in (fd, mon):
            if x is not None:
                os.close(x)


def exec_argv(info: ProcessInfo, argv: Sequence[str], workdir: str | None = None,
              env: Mapping[str, str] | None = None) -> list[str]:
    """nsenter argv running ``argv`` in the container with its env updated by ``env``;
    default workdir is pid 1's cwd."""
    deadline = time.monotonic() + 2.0
    while True:  # start() returns just before pid 1's final execve; wait for its environ
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
    return [_NSENTER, f"--target={info.pid}", "--net", "--uts", "--ipc", "--mount", "--pid",
            f"--wd={workdir}" if workdir else "--wd", "--", _ENV, "-i", "--",
            *(f"{k}={v}" for k, v in cenv.items()), *argv]


class ExitWatcher:
    """One thread, one epoll, one pidfd per monitor: ``callback(container_id, exit_code)``
    fires once per watch, from the watcher thread (None if no code was recorded)."""

    def __init__(self, callback: Callable[[str, int | None], None]) -> None:
        self._callback = callback
        self._sel = selectors.DefaultSelector()
        self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._sel.register(self._wake, selectors.EVENT_READ, None)
        self._ops: deque[tuple] = deque()  # (op, container_id, pidfd, info, state_dir)
        self._lock = threading.Lock()
        self._closed = False
        self._watches: dict[str, tuple[int | None, ProcessInfo, str]] = {}  # loop thread only
        self._thread = threading.Thread(target=self._run, name="exit-watcher", daemon=True)
        self._thread.start()

    def _post(self, *op) -> None:
        with self._lock:
            if self._closed:
                if op[0] == "watch" and op[2] is not None:
                    os.close(op[2])
                raise ProcessError("ExitWatcher is closed")
            self._ops.append(op)
            self._closed = op[0] == "close"
            os.eventfd_write(self._wake, 1)

    def watch(self, container_id: str, info: ProcessInfo, state_dir: str) -> None:
        # A monitor that is already gone gets no pidfd and fires on the next loop turn.
        fd = _pidfd(info.monitor_pid, info.monitor_start)
        self._post("watch", container_id, None if fd is None else _above_select_range(fd), info, state_dir)

    def unwatch(self, container_id: str) -> None:
        self._post("unwatch", container_id)

    def close(self) -> None:
        try:
            self._post("close", None)
        except ProcessError:
            return
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _drop(self, cid: str | None) -> None:
        fd = self._watches.pop(cid, (None,))[0]
        if fd is not None:
            self._sel.unregister(fd)
            os.close(fd)

    def _fire(self, cid: str) -> None:
        fd, info, state_dir = self._watches[cid]
        if fd is not None:
            _reap(info.monitor_pid, fd)
        self._drop(cid)
        try:
            self._callback(cid, read_exit_code(state_dir))
        except Exception:
            log.exception("exit callback for %s failed", cid)

    def _run(self) -> None:
        while True:
            for key, _ in self._sel.select():
                if key.data is not None:  # a monitor exited (skip if dropped meanwhile)
                    if self._watches.get(key.data, (None,))[0] == key.fd:
                        self._fire(key.data)
                    continue
                os.eventfd_read(self._wake)
                while True:
                    with self._lock:
                        if not self._ops:
                            break
                        op, cid, *rest = self._ops.popleft()
                    self._drop(cid)
                    if op == "close":
                        for c in list(self._watches):
                            self._drop(c)
                        self._sel.close()
                        os.close(self._wake)
                        return
                    if op == "watch":
                        self._watches[cid] = (rest[0], rest[1], rest[2])
                        if rest[0] is None:
                            self._fire(cid)
                        else:
                            self._sel.register(rest[0], selectors.EVENT_READ, cid)
