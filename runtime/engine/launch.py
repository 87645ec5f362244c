"""The command line that starts a container: a monitor shell, bwrap under it, the command under bwrap.

``nsenter [--net=NETNS] --mount=TEMPLATE unshare --mount --propagation slave sh -c MONITOR``:
util-linux enters the sandbox's network namespace and a private copy of the mount template
(``mounttemplate``), so the threaded engine needs no ``preexec_fn``. The monitor shell mounts
the container's root (the image's layers read-only under its own overlayfs upper layer) and a
sysfs of the container's own network namespace in that private namespace, where they vanish
with the monitor, then runs bubblewrap, which makes the rest (new pid, ipc and uts namespaces,
pivot_root, a private /proc with Docker's masked and read-only paths, a minimal /dev, the bind
mounts, capabilities, no_new_privs, the seccomp program) and execs the command as pid 1. bwrap
writes pid 1's host pid to the start pipe (``--info-fd``); the monitor waits for bwrap, which
returns the command's exit status (128+N for a signal), and writes it to
``state_dir/exit_code`` atomically. The monitor has its own session and never reads from the
engine, so it outlives an engine SIGKILL.

Why bwrap and not an OCI runtime: crun refuses this host's hybrid cgroup layout outright, and
runc cost several times bwrap's time per start here (docs/performance.md); bwrap does the same
kernel work without a Go runtime. Its limits: it cannot change the user without a user
namespace (a static helper does, see ``helpers/setuser.c``), and it keeps the capability
bounding set (no_new_privs means nothing regains a dropped capability through exec).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["MONITOR", "MARKER", "TTY_MASTER_FD", "CAP_NUMBERS", "DEFAULT_CAPS", "ALL_CAPS", "MASKED_PATHS", "READONLY_PATHS", "capabilities", "masks"]

_NSENTER, _UNSHARE, _SH, _BWRAP = "/usr/bin/nsenter", "/usr/bin/unshare", "/bin/sh", "/usr/bin/bwrap"
TTY_MASTER_FD = 7
MARKER = "netcore-init"  # the monitor's $0, followed by its state dir: how ``monitors.find`` knows it in /proc

# Args: $1 state dir, $2 overlay options ("" = the host's root), $3 sysfs options; then
# bwrap's arguments, which name the start pipe's and the seccomp program's descriptors
# (inherited: dash cannot redirect descriptors above 9). With a terminal (NETCORE_TTY) the
# monitor's stdin is the pty's master and its stdout the slave: it keeps the master on fd 7
# (TTY_MASTER_FD) for the container's life, so that the terminal outlives an engine restart
# (the next engine takes a copy back, see ``stdio``), and gives bwrap the slave on 0, 1, 2.
MONITOR = """cd /
sd=$1 ov=$2 sys=$3
shift 3
[ -z "$NETCORE_TTY" ] || exec 7<&0 0<&1
if [ -n "$ov" ]; then /bin/mount -t overlay -o "$ov" overlay "$sd/rootfs" || exit 1; fi
/bin/mount -t sysfs -o "$sys" sysfs "$sd/sys" || exit 1
[ -z "$NETCORE_NOFILE" ] || ulimit -S -n "$NETCORE_NOFILE"
(exec 7<&-; exec /usr/bin/bwrap "$@")
printf '%s\\n' $? > "$sd/exit_code.tmp"
exec /bin/mv -f "$sd/exit_code.tmp" "$sd/exit_code"
"""

# Docker's default capability set (moby oci/caps/defaults.go)
DEFAULT_CAPS = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})
# linux/capability.h
CAP_NUMBERS = {name: i for i, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"))}
ALL_CAPS = frozenset(CAP_NUMBERS)
# Docker's (moby oci/defaults.go)
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _cap(name: str) -> str:
    n = name.strip().upper()
    n = n if n.startswith("CAP_") else f"CAP_{n}"
    if n != "CAP_ALL" and n not in ALL_CAPS:
        raise ValueError(f"invalid capability: {name}")
    return n


def capabilities(add: tuple[str, ...] | list[str] = (), drop: tuple[str, ...] | list[str] = (),
                 privileged: bool = False) -> frozenset[str]:
    """Docker's rules: the default set, ``--cap-drop`` then ``--cap-add`` (ALL allowed in both)."""
    if privileged:
        return ALL_CAPS
    adds, drops = [_cap(c) for c in add], [_cap(c) for c in drop]
    caps = set() if "CAP_ALL" in drops else set(DEFAULT_CAPS) - set(drops)
    return frozenset(ALL_CAPS if "CAP_ALL" in adds else caps | set(adds))


def masks() -> Iterator[str]:
    """bwrap arguments for Docker's masked and read-only paths that exist on this kernel:
    a file masked by /dev/null, a directory by an empty read-only tmpfs."""
    for path in MASKED_PATHS:
        if os.path.isdir(path):
            yield from ("--perms", "0555", "--tmpfs", path, "--remount-ro", path)
        elif os.path.exists(path):
            yield from ("--ro-bind", "/dev/null", path)
    for path in READONLY_PATHS:
        if os.path.exists(path):
            yield from ("--ro-bind", path, path)


def prefix(netns_path: str | None, template: str | None) -> list[str]:
    """nsenter + unshare: the sandbox's netns and a private copy of the mount template."""
    enter = [f"--net={netns_path}"] if netns_path else []
    enter += [f"--mount={template}"] if template else []
    argv = [_NSENTER, *enter, "--"] if enter else []
    return argv + [_UNSHARE, "--mount", "--propagation", "slave", "--", _SH, "-c", MONITOR, MARKER]
