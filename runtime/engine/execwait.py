"""Did the container's command start? Docker's ``run -d nosuchcmd`` fails the run (exit 127,
the container left Created) instead of returning an id that shows ``Exited (127)`` later.

The launcher checks the command against the container's root before it starts anything
(``rootfs.find_command``); what that cannot see (a script's missing interpreter, a file the
``-u`` user may not run, a command the kernel refuses) fails at the final ``execve``, after
bwrap has written pid 1's pid. So ``Launcher.start`` waits for that ``execve`` (``exec_done``):
until then pid 1 still carries the monitor's marker in its environment (bwrap and the user
switch helper run with it; the command never gets it) and is not the helper. If pid 1 dies
first, the monitor's exit code and the last line of the log say why (``failure``): bwrap's
``execvp`` error, or the helper's Docker-worded ``exec: "x": ...`` with 127/126.

``mounted_view``: the command may be in a ``-v`` bind mount, which the image's layers do not
hold; the pre-check looks there too.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

__all__ = ["exec_done", "failure", "mounted_view"]

_BWRAP = re.compile(r"^bwrap: execvp (?P<cmd>.*): (?P<why>[^:]+)$")
_HELPER = re.compile(r'^exec: "(?P<cmd>.*)": (?P<why>.+)$')


def exec_done(pid: int, marker: bytes, helper: tuple[int, int] | None, timeout: float = 5.0) -> bool:
    """True once pid 1 runs the container's command; False if it died before (the exec
    failed, or the command ran and ended already: ``failure`` tells them apart). After
    ``timeout`` it counts as started (a machine this slow gets the old behaviour)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:  # gone, or a zombie (its exe unreadable)
            return False
        if marker not in env.split(b"\0") and (st.st_dev, st.st_ino) != helper:
            return True
        time.sleep(0.0002)
    return True


def failure(code: int | None, last_line: str, argv0: str) -> tuple[str, int] | None:
    """Docker's message and exit code if pid 1 died because its command could not be run
    (``code``: the monitor's record of bwrap's status; ``last_line``: the log's), else None."""
    line = last_line.strip()
    if code == 1 and (m := _BWRAP.match(line)):
        why = m.group("why")
        if why == "No such file or directory":
            return f'exec: "{argv0}": no such file or directory', 127
        return f'exec: "{argv0}": {why.lower()}', 126
    if code in (126, 127) and (m := _HELPER.match(line)):  # the helper's strerror, in Go's lower case
        return f'exec: "{m.group("cmd")}": {m.group("why").lower()}', code
    return None


class _MountedView:
    """A ``RootView`` that also sees the bind mounts (container path -> host path)."""

    def __init__(self, view: Any, binds: dict[str, str]) -> None:
        self.view = view
        self.binds = sorted(((os.path.normpath(t), s) for t, s in binds.items()), key=lambda b: -len(b[0]))

    def lookup(self, path: str, follow: bool = True) -> str | None:
        norm = os.path.normpath(path)
        for target, source in self.binds:
            if norm == target or norm.startswith(target.rstrip("/") + "/"):
                host = source + norm[len(target):]
                return host if os.path.lexists(host) else None
        return self.view.lookup(path, follow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)


def mounted_view(view: Any, binds: dict[str, str]) -> Any:
    """``view`` with ``binds`` (container path -> host path) over it; ``view`` itself if none."""
    return _MountedView(view, binds) if binds else view
