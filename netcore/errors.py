"""netcore's error categories.

Every failure reaches the user as one line; the category picks the CLI exit code
and the API status::

    NetcoreError
    ├── NotFound            an object that does not exist (404)
    ├── AlreadyExists       a name or address already taken (409)
    ├── Conflict            refused because of other state, e.g. a network in use (409)
    ├── Forbidden           never allowed, e.g. removing a default network (403)
    ├── InvalidConfig       bad user input, caught before the kernel is touched (400)
    ├── KernelError         netlink / nftables / sysctl said no (500)
    ├── PluginError         a plugin is malformed or raised something unexpected (500)
    └── TeardownIncomplete  best-effort teardown collected several failures (500)
"""

from __future__ import annotations

__all__ = [
    "NetcoreError",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "InvalidConfig",
    "KernelError",
    "PluginError",
    "TeardownIncomplete",
]


class NetcoreError(Exception):
    """Base of every error netcore reports; ``str()`` is the one line users see."""

    status = 500


class NotFound(NetcoreError):
    status = 404


class AlreadyExists(NetcoreError):
    status = 409


class Conflict(NetcoreError):
    status = 409


class Forbidden(NetcoreError):
    status = 403


class InvalidConfig(NetcoreError):
    status = 400


class KernelError(NetcoreError):
    """A kernel operation failed: names the operation, the target and the errno."""

    def __init__(self, op: str, target: str, cause: str | int) -> None:
        self.op, self.target, self.cause = op, target, cause
        if isinstance(cause, int):
            import errno as _errno
            import os

            cause = f"{_errno.errorcode.get(cause, cause)} ({os.strerror(cause)})"
        super().__init__(f"{op} {target}: {cause}")


class PluginError(NetcoreError):
    pass


class TeardownIncomplete(NetcoreError):
    """Teardown ran every undo and some failed; ``errors`` holds each one."""

    def __init__(self, what: str, errors: list[BaseException]) -> None:
        self.errors = errors
        detail = "; ".join(str(e) for e in errors)
        super().__init__(f"{what}: {len(errors)} cleanup step(s) failed: {detail}")
