"""A read-only view of an image's filesystem, for the steps that must look into it.

COPY needs to know whether its destination is a directory of the image and what the
parent directories it creates look like there, ``--chown=NAME`` reads the image's
passwd and group files, ``COPY --from`` copies out of another stage, WORKDIR checks that
its directory exists. Layers are directories in overlayfs' format (whiteouts, opaque
directories), so the exact merged view is an overlay mount of them, read-only (only
lower directories): mounted on first use, in a private directory, and unmounted when
the step ends. One layer is its own view, no layer an empty one.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence

__all__ = ["ImageView", "ViewError"]


class ViewError(RuntimeError):
    pass


class ImageView:
    """``with ImageView(layer_dirs, tmp) as v: v.lookup("/etc/passwd")`` -> a host path or None."""

    def __init__(self, layer_dirs: Sequence[str], tmp_root: str) -> None:
        self.layers = list(layer_dirs)  # lowest first
        self.tmp_root = tmp_root
        self._root: str | None = None
        self._mounted: str | None = None

    def __enter__(self) -> "ImageView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> str | None:
        """The merged tree's directory on the host (None: the image is empty)."""
        if self._root is None and self.layers:
            if len(self.layers) == 1:
                self._root = self.layers[0]
            else:
                self._root = self._mount()
        return self._root

    def _mount(self) -> str:
        os.makedirs(self.tmp_root, exist_ok=True)
        target = tempfile.mkdtemp(prefix="view-", dir=self.tmp_root)
        lower = ":".join(reversed(self.layers))  # overlayfs lists the top layer first
        res = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"ro,lowerdir={lower}", target],
                             capture_output=True, text=True)
        if res.returncode != 0:
            os.rmdir(target)
            raise ViewError(f"cannot mount the image's layers: {res.stderr.strip()}")
        self._mounted = target
        return target

    def lookup(self, path: str) -> str | None:
        """The host path of the image's ``path`` if it exists there (not following a final symlink)."""
        root = self.root
        if root is None:
            return None
        host = os.path.join(root, path.lstrip("/"))
        return host if os.path.lexists(host) else None

    def close(self) -> None:
        if self._mounted is not None:
            subprocess.run(["umount", self._mounted], capture_output=True)
            try:
                os.rmdir(self._mounted)  # never rmtree: if the unmount failed, that is the image
            except OSError:
                pass
            self._mounted = None
        self._root = None
