"""A read-only view of an image's filesystem, for the steps that must look into it.

COPY needs to know whether its destination is a directory of the image and what the
parent directories it creates look like there, ``--chown=NAME`` reads the image's
passwd and group files, ``COPY --from`` copies out of another stage, WORKDIR checks that
its directory exists. Layers are directories in overlayfs' format (whiteouts, opaque
directories), so the exact merged view is an overlay of them, read-only (lower
directories only). It is made with the kernel's new mount API (``fsopen``/``fsconfig``/
``fsmount``) and never attached to the mount tree: a detached mount reached through its
descriptor (``/proc/self/fd/N``). So nothing is mounted where anyone can see it, no
mount event reaches the containers' mount namespaces, and the mount goes away with its
descriptor, even if the engine is killed. Made on first use; one layer is its own view,
no layer an empty one.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

__all__ = ["ImageView", "ViewError"]

_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 430, 431, 432  # x86_64 and every other architecture (new syscalls share numbers)
_FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 1, 6
_CLOEXEC = 1  # FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC
_MOUNT_ATTR_RDONLY = 1
_libc: ctypes.CDLL | None = None


class ViewError(RuntimeError):
    pass


def _syscall(*args: object) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    ret = _libc.syscall(*args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def detached_overlay(lower_dirs: Sequence[str]) -> int:
    """A read-only overlay of ``lower_dirs`` (top first), detached; its mount descriptor."""
    fs = _syscall(_SYS_FSOPEN, b"overlay", _CLOEXEC)
    try:
        for d in lower_dirs:  # one at a time: fsconfig takes strings of 256 bytes at most
            _syscall(_SYS_FSCONFIG, fs, _FSCONFIG_SET_STRING, b"lowerdir+", d.encode(), 0)
        _syscall(_SYS_FSCONFIG, fs, _FSCONFIG_CMD_CREATE, None, None, 0)
        return _syscall(_SYS_FSMOUNT, fs, _CLOEXEC, _MOUNT_ATTR_RDONLY)
    finally:
        os.close(fs)


class ImageView:
    """``with ImageView(layer_dirs) as v: v.lookup("/etc/passwd")`` -> a host path or None."""

    def __init__(self, layer_dirs: Sequence[str]) -> None:
        self.layers = list(layer_dirs)  # lowest first
        self._root: str | None = None
        self._fd: int | None = None

    def __enter__(self) -> "ImageView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> str | None:
        """The merged tree's directory (None: the image is empty)."""
        if self._root is None and self.layers:
            if len(self.layers) == 1:
                self._root = self.layers[0]
            else:
                try:
                    self._fd = detached_overlay(list(reversed(self.layers)))
                except OSError as exc:
                    raise ViewError(f"cannot mount the image's layers: {exc.strerror}") from None
                self._root = f"/proc/self/fd/{self._fd}"
        return self._root

    def lookup(self, path: str) -> str | None:
        """The host path of the image's ``path`` if it exists there (not following a final symlink)."""
        root = self.root
        if root is None:
            return None
        host = os.path.join(root, path.lstrip("/"))
        return host if os.path.lexists(host) else None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the last reference: the kernel unmounts it
            self._fd = None
        self._root = None
