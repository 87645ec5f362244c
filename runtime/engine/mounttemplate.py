"""The mount namespace containers are copied from: the engine's, minus ``/run/netns``.

Every sandbox's netns is a bind mount in the shared ``/run/netns``. Copying the engine's
namespace for a container would copy all of them (O(sandboxes) per start), and the
container's slave copy of ``/run/netns`` would then receive every later sandbox's mount
and unmount (O(containers) per sandbox): kernel work that grows with the number of
containers. Containers never use ``/run/netns`` (nsenter opens the netns before entering
anything), so they are made from a namespace where it is detached, made once per engine
(per ``MountTemplate``) and held by a descriptor: it goes when the engine goes. It is a
slave of the engine's mounts, so shared mounts made later on the host propagate into new
containers; a private mount made after it does not.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

from netcore.osl.netns import NETNS_DIR
from runtime.engine import pidfd

__all__ = ["MountTemplate", "is_mount_point"]

log = logging.getLogger(__name__)

_SH, _UNSHARE = "/bin/sh", "/usr/bin/unshare"


def is_mount_point(path: str) -> bool:
    """From mountinfo: os.path.ismount misses a directory bind-mounted onto itself."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split(" ", 5)[4] == path for line in f)
    except OSError:
        return False


class MountTemplate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: str | None = None  # /proc/<engine pid>/fd/<fd>
        self._failed = False

    def path(self) -> str | None:
        """Made once ``/run/netns`` is a mount point (there is nothing to hide before);
        None: no template (no netns yet, or it could not be made), copy the engine's."""
        with self._lock:
            if self._path is None and not self._failed and is_mount_point(NETNS_DIR):
                try:
                    self._path = _make()
                except OSError as exc:
                    self._failed = True
                    log.warning("containers copy the engine's mount namespace, /run/netns included: %s", exc)
            return self._path


def _make() -> str:
    """A helper detaches /run/netns in a new mount namespace; the engine keeps a descriptor."""
    helper = subprocess.Popen(
        [_UNSHARE, "--mount", "--propagation", "slave", "--", _SH, "-c",
         f"/bin/umount -l {NETNS_DIR} && echo ready && read _"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    assert helper.stdin is not None and helper.stdout is not None and helper.stderr is not None
    fd = None
    try:
        if pidfd.wait_fd(helper.stdout.fileno(), 10.0) and helper.stdout.readline() == b"ready\n":
            fd = pidfd.above_select_range(os.open(f"/proc/{helper.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
    finally:
        helper.kill()
        helper.wait()
        why = helper.stderr.read().decode(errors="replace").strip()
        for f in (helper.stdin, helper.stdout, helper.stderr):
            f.close()
    if fd is None:
        raise OSError(f"mount template: {why or 'the helper did not answer'}")
    return f"/proc/{os.getpid()}/fd/{fd}"
