"""sysctl reads and writes through /proc/sys (in the calling thread's netns)."""

from __future__ import annotations

from netcore.errors import KernelError

__all__ = ["read", "write"]


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def write(key: str, value: str | int) -> None:
    try:
        with open(_path(key), "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise KernelError("sysctl", f"{key}={value}", exc.errno or str(exc)) from None
