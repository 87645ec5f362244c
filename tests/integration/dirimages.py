"""Images made directly from directories, for tests of the launcher before (or without) the image store.

``busybox_rootfs`` makes a small root filesystem from Debian's busybox-static; an images
directory holds one subdirectory per image (``layers/0``, ``layers/1``, ... lowest first,
and ``config.json``: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts). ``daemon_argv``
runs an engine that resolves image names there (and ``host`` as usual).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BUSYBOX = "/bin/busybox"


def busybox_rootfs(root: Path) -> Path:
    """A root with /bin/busybox, its applets as relative symlinks in /bin, /etc/passwd and /etc/group."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox" and not (root / "bin" / name).exists():
            os.symlink("busybox", root / "bin" / name)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                                         "app:x:1000:1000:app:/home/app:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\naudio:x:29:app\n")
    for d in ("root", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir(exist_ok=True)
    return root


def add_image(images: Path, name: str, layers: list[Path], config: dict | None = None) -> None:
    """Image ``name`` from existing layer directories (lowest first)."""
    d = images / name
    (d / "layers").mkdir(parents=True)
    for i, layer in enumerate(layers):
        os.symlink(layer, d / "layers" / str(i))
    (d / "config.json").write_text(json.dumps(config or {}))


class DirectoryImages:
    """``resolve(ref)`` over an images directory (the engine's image resolver contract);
    names it does not hold go to ``fallback`` (the engine's own store, if any)."""

    def __init__(self, path: str, fallback=None) -> None:
        self.path = path
        self.fallback = fallback

    def resolve(self, ref: str):
        from netcore import NotFound
        from runtime.engine.rootfs import HOST_IMAGE, Image

        name = ref.removesuffix(":latest")
        if name == "host":
            return HOST_IMAGE
        d = os.path.join(self.path, name)
        if "/" in name or not os.path.isdir(d):
            if self.fallback is not None:
                return self.fallback.resolve(ref)
            raise NotFound(f"No such image: {ref}")
        layers = os.path.join(d, "layers")
        paths = tuple(os.path.realpath(os.path.join(layers, n)) for n in sorted(os.listdir(layers), key=int))
        with open(os.path.join(d, "config.json")) as f:
            return Image(f"sha256:{name}", paths, json.load(f), (f"{name}:latest",))


def daemon_argv(images: Path) -> list[str]:
    """The engine's command (before ``daemon ...``), resolving images in ``images``."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = ("import sys; sys.path.insert(0, %r); import dirimages; dirimages.install(%r); "
            "from runtime.cli import main; sys.argv[0] = 'netcore'; main()") % (here, str(images))
    return [sys.executable, "-c", code]


def install(images: str) -> None:
    """In an engine process: every ``Containers`` resolves ``images`` first, then what it was given."""
    from runtime.engine.containers import Containers

    init = Containers.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.images = DirectoryImages(images, fallback=self.images)

    Containers.__init__ = __init__
