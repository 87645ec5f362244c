"""What a container's root filesystem is made of: the contract between the image store and the launcher.

The image store (``runtime/engine/images.py``) resolves a reference to an ``Image``; the
launcher stacks its layers read-only under a per-container overlayfs upper layer. The
built-in image ``host`` has no layers: its root is the host's own, read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Image", "HOST_IMAGE"]


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<hex>" of the image config, or "host"
    layers: tuple[str, ...] = ()  # unpacked layer directories, lowest first, overlayfs whiteout format
    config: Mapping[str, Any] = field(default_factory=dict)  # Entrypoint, Cmd, Env, WorkingDir, ExposedPorts, User, Labels, Volumes
    names: tuple[str, ...] = ()  # repository:tag references that point at it

    @property
    def is_host(self) -> bool:
        return self.id == "host"


HOST_IMAGE = Image("host", names=("host",))
