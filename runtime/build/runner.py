"""RUN: a container from the image so far, on the default bridge network, whose changes become a layer.

The container is an ordinary one of the engine (``Containers.run``), so a build's RUN goes
through netcore's drivers like any ``netcore run``: its own network namespace on ``bridge``,
the embedded DNS, the image's layers read-only under an overlayfs upper directory. Its
output is followed from its log and passed to the build's progress. Once it exited, its
upper directory is what the step changed; the builder commits it, then ``release``
removes the container with its directory.

The upper directory also holds the mount points the launcher made for the container's own
files (``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``) when the image lacks
them: empty files that are the engine's, not the command's, so they are left out of the
layer (Docker keeps them in an init layer that is never committed).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from typing import Any

from runtime.build.builder import RunResult
from runtime.engine import logstore, process
from runtime.engine.rootfs import Image

__all__ = ["ContainerRunner"]

_ENGINE_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
_MOUNT_DIRS = ("etc", "proc", "sys", "dev")


class ContainerRunner:
    def __init__(self, containers: Any) -> None:
        self.containers = containers

    def run(self, image: Image, argv: list[str], env: dict[str, str], workdir: str, user: str,
            emit: Callable[[str], None]) -> RunResult:
        ctr = self.containers
        rec = ctr.run(argv=argv, image=image, entrypoint=[], env=env, workdir=workdir or None, user=user or None,
                      networks=[{"name": "bridge"}])
        cid = rec["id"]
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                ctr.remove(cid, force=True)

        try:
            emit(f" ---> Running in {cid[:12]}\n")
            code = self._follow(cid, emit)
            upper = process.upper_dirs(ctr.state_dir(cid))[0]
            _drop_engine_files(upper, image)
        except BaseException:
            release()
            raise

        def release_and_say() -> None:
            release()
            emit(f"Removing intermediate container {cid[:12]}\n")

        return RunResult(code if code is not None else 1, upper, release_and_say)

    def _follow(self, cid: str, emit: Callable[[str], None]) -> int | None:
        """Pass the container's output on as it comes; its exit code."""
        _, path = self.containers.log_path(cid)
        exited = self.containers.exit_event(cid)
        offset, partial = 0, bytearray()
        while True:
            done = exited is None or exited.is_set()
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = b"".join(r.data for r in logstore.records(f, partial))  # both streams, as Docker's build shows them
                    offset = f.tell()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                emit(chunk.decode(errors="replace"))
            if done:
                break
            if exited is not None:
                exited.wait(0.05)
            else:
                time.sleep(0.05)
        return self.containers.wait(cid)


def _drop_engine_files(upper: str, image: Image) -> None:
    """Remove what the launcher made in the upper directory for its own mounts: the empty
    files under the engine's per-container files where the image has none, and the empty
    directories it made or copied up to hold mount points (``/etc``, ``/proc``, ``/sys``,
    ``/dev``; an opaque one is the command's: it replaced the directory)."""
    for rel in _ENGINE_FILES:
        path = os.path.join(upper, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size != 0:
            continue
        if any(os.path.lexists(os.path.join(layer, rel)) for layer in image.layers):
            continue
        os.unlink(path)
    for rel in _MOUNT_DIRS:
        path = os.path.join(upper, rel)
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path) and not _opaque(path):
            os.rmdir(path)


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False
