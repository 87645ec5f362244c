"""``diff``: what a container changed in its root, from its overlayfs upper dir.

Each entry of the upper dir is ``A`` (added: no such path in the image's layers), ``C``
(changed: it was there, or a directory copied up because something under it changed) or
``D`` (deleted: an overlayfs whiteout, a 0/0 character device). As Docker's init layer,
the files the engine binds over (``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``),
the kernel's mount points (``/proc``, ``/sys``, ``/dev``) and the container's own mount
points are left out, and so is a directory that only changed because of them. A container of
the host image has no upper dir: no changes.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from runtime.engine.rootfs import RootView

__all__ = ["changes", "KIND"]

KIND = {"C": 0, "A": 1, "D": 2}  # Docker's numeric Kind
INIT = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev", "/.dockerenv")


def changes(upper: str, layers: tuple[str, ...], mount_points: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Docker's ``/containers/ID/changes``: ``[{"Path": "/x", "Kind": 0|1|2}, ...]`` sorted by path."""
    if not os.path.isdir(upper):
        return []
    lower = RootView(tuple(reversed(layers)))
    skip = set(INIT) | set(mount_points)
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        rel_dir = "/" + os.path.relpath(dirpath, upper) if dirpath != upper else ""
        for name in [*dirnames, *filenames]:
            path = f"{rel_dir}/{name}"
            if path in skip or any(path.startswith(s + "/") for s in skip):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                found[path] = "D"
            else:
                found[path] = "C" if lower.lookup(path, follow=False) is not None else "A"
    # a copied-up directory whose changes were all left out is no change
    for path in sorted((p for p, k in found.items() if k == "C"), key=len, reverse=True):
        full = os.path.join(upper, path.lstrip("/"))
        if os.path.isdir(full) and not os.path.islink(full) and not any(p.startswith(path + "/") for p in found):
            if any(s.startswith(path + "/") for s in skip):
                del found[path]
    return [{"Path": p, "Kind": KIND[k]} for p, k in sorted(found.items())]
