"""What an engine claims before it touches anything: its root dir, its socket, its namespace.

* One engine per root and per socket, for the engine's whole life: an exclusive
  ``flock`` on ``<root>/engine.lock`` and on ``<socket>.lock``. The kernel drops
  the locks when the process dies, kill -9 included, so there is nothing stale to
  clean up; a second engine exits with one line naming the first one's pid.
* The root holds containers' environments (``netcore.db``): it is 0700 and the
  engine's files in it 0600, fixed at every start for roots made by older engines.
* Sandboxes are bind mounts under ``/run/netns``. Under ``ip netns exec`` the engine
  runs in a private mount namespace (a slave of the host's): its mounts die with it
  and the next engine finds none of its containers' namespaces, so it refuses.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat

from netcore import NetcoreError

__all__ = ["EngineLock", "lock", "secure", "check_mount_namespace", "LockedError"]

LOCK_FILE = "engine.lock"
NETNS_DIR = "/run/netns"


class LockedError(NetcoreError):
    """Another engine holds the root or the socket."""


class EngineLock:
    """The held locks; ``release()`` at exit (the kernel does it on a crash)."""

    def __init__(self, fds: list[int]) -> None:
        self.fds = fds

    def release(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def _take(path: str, what: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        except OSError:
            holder = ""
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise LockedError(f"another netcore engine{pid} is already running on {what}") from None
        raise LockedError(f"cannot lock {path}: {exc.strerror}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    os.fchmod(fd, 0o600)
    return fd


def lock(root: str, socket_path: str) -> EngineLock:
    """Take the root's lock, then the socket's; all or nothing (a root made here goes again)."""
    made = not os.path.exists(root)
    os.makedirs(root, mode=0o700, exist_ok=True)
    fds: list[int] = []
    try:
        fds.append(_take(os.path.join(root, LOCK_FILE), f"root {root}"))
        os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
        fds.append(_take(socket_path + ".lock", f"socket {socket_path}"))
    except BaseException:
        EngineLock(fds).release()
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return EngineLock(fds)


def secure(root: str) -> None:
    """Root 0700; the regular files directly in it (the store, its WAL, logs, locks) 0600.

    Deeper files keep their modes (containers' hosts/resolv.conf, image layers, volume
    data): nobody but root gets past the root dir.
    """
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    for entry in os.scandir(root):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(entry.path, stat.S_IMODE(st.st_mode) & 0o700)
    db = os.path.join(root, "netcore.db")
    if not os.path.exists(db):  # sqlite makes its WAL and SHM with the database's mode
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def _propagation(mountinfo: str, mount_point: str) -> str | None:
    """The optional fields (``shared:N``, ``master:N``) of the last mount at ``mount_point``."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 6 and fields[4] == mount_point:
            opt = fields[6:fields.index("-")] if "-" in fields else []
            found = " ".join(opt)
    return found


def check_mount_namespace(netns_dir: str = NETNS_DIR) -> None:
    """Refuse to run where the sandboxes' mounts would not outlive the engine.

    ``ip netns add`` makes ``/run/netns`` a shared mount; ``ip netns exec`` gives its
    command a slave copy, in which a new netns mount never reaches the host.
    """
    why = None
    try:
        own = os.stat("/proc/self/ns/mnt").st_ino
        init = os.stat("/proc/1/ns/mnt").st_ino
        if own != init:
            why = "a private mount namespace"
    except OSError:
        pass  # /proc/1 not readable (a sandboxed init): the propagation check below decides
    if why is None:
        try:
            with open("/proc/self/mountinfo") as f:
                prop = _propagation(f.read(), netns_dir)
        except OSError:
            prop = None
        if prop is not None and "shared:" not in prop:
            why = f"a mount namespace where {netns_dir} is not shared with the host's"
    if why:
        raise NetcoreError(
            f"the engine runs in {why} (ip netns exec?): its containers' namespaces would vanish with it; "
            f"start it with nsenter --net=/run/netns/NAME instead"
        )
