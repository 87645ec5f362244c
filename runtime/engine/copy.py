"""``cp`` on the engine's side: a tar of a path in a container's root, or a tar put there.

The work runs in a helper process (``python -S -m runtime.engine.copyhelper``) that first enters the
container's root, so that paths and symlinks resolve inside it and never on the host:

- a running container: ``chroot /proc/PID/root`` (its mounts, volumes and tmpfs included);
- a stopped one with image layers: in a mount namespace of its own (``unshare -m``) the
  helper mounts the container's overlay (layers + its upper dir) and enters it, so a copy
  in lands in the upper dir as the container will see it at its next start;
- a stopped one of the host image: the host's root, read only.

The helper (``copyhelper``, light to start: no site, no netcore) reads the whole incoming
archive into a temporary file before it enters the root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from netcore import Conflict, InvalidConfig, NotFound

__all__ = ["get_archive", "put_archive"]

UNSHARE = "/usr/bin/unshare"


def _root_args(ctr: Any, rec: dict[str, Any], write: bool) -> list[str]:
    """How the helper enters ``rec``'s root: ``proc PID`` | ``overlay MNT UPPER WORK LOWER...`` | ``host``."""
    if write and rec.get("read_only"):
        raise Conflict("container rootfs is marked read-only")
    if rec["state"] == "running" and rec.get("process"):
        return ["proc", str(rec["process"]["pid"])]
    img = ctr._image(rec)
    if img.is_host:
        if write:
            raise Conflict(f"container {rec['name']} runs the host's root, which is read-only: start it to copy into its mounts")
        return ["host"]
    sd = ctr.state_dir(rec["id"])
    from runtime.engine.process import upper_dirs

    upper, work = upper_dirs(sd)
    mnt = os.path.join(sd, "rootfs")
    for d in (upper, work, mnt):
        os.makedirs(d, exist_ok=True)
    return ["overlay", mnt, upper, work, *img.layers]


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # where ``runtime`` is


def _helper(args: list[str], root: list[str]) -> list[str]:
    argv = [sys.executable, "-S", "-m", "runtime.engine.copyhelper", *args, "--", *root]
    return [UNSHARE, "-m", "--propagation", "private", *argv] if root[0] == "overlay" else argv


def get_archive(ctr: Any, ref: str, path: str, follow: bool = False) -> Iterator[bytes]:
    """The tar of ``path`` in container ``ref``; a missing path fails before any byte (404)."""
    rec = ctr.get(ref)
    if not path.startswith("/"):
        path = "/" + path
    proc = subprocess.Popen(_helper(["get", path, "1" if follow else "0", rec["name"]], _root_args(ctr, rec, False)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    first = proc.stdout.read(65536)
    if not first:
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.wait()
        if proc.returncode != 0:
            raise NotFound(err.splitlines()[-1] if err else f"Could not find the file {path} in container {rec['name']}")

    def chunks() -> Iterator[bytes]:
        try:
            if first:
                yield first
            while chunk := proc.stdout.read(65536):
                yield chunk
        finally:
            proc.stdout.close()
            proc.kill() if proc.poll() is None else None
            proc.wait()
            proc.stderr.close()

    return chunks()


def put_archive(ctr: Any, ref: str, path: str, body: Any, keep_owner: bool = False, raw: bool = False) -> None:
    """Extract the request's tar at ``path`` in container ``ref`` (``copyrules.unpack``'s rules)."""
    rec = ctr.get(ref)
    if not path.startswith("/"):
        path = "/" + path
    root = _root_args(ctr, rec, True)
    proc = subprocess.Popen(_helper(["put", path, "1" if keep_owner else "0", "1" if raw else "0"], root),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        while chunk := body.read(1 << 20):
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.wait()
    if proc.returncode != 0:
        raise InvalidConfig(err.splitlines()[-1] if err else "copy failed")
