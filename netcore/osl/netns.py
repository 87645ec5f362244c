"""Network namespaces: create, delete, and open netlink sockets inside them.

Entering a namespace is done with ``setns`` on the calling thread and back again
(a network namespace is a per-thread attribute), which is several times faster
than pyroute2's fork-per-namespace helper. Named namespaces live in ``/run/netns``
like ``ip netns`` makes them, so ``ip netns exec`` works on them.

Sockets: ``host()`` is the engine's warm socket in its own netns. In another netns,
``netlink(path)`` gives a socket for the body of a ``with``; inside a ``session()``
(one controller operation, on one thread) every ``netlink(path)`` of the same netns
gets the same socket, the one ``create`` used to bring ``lo`` up included, and all of
them are closed when the session ends: a container's setup opens one socket in its
netns, not one per step. A socket keeps its netns alive in the kernel, so a session
never outlives its operation, and ``delete`` closes the session's socket of the
netns it deletes.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from netcore.errors import KernelError

__all__ = ["NETNS_DIR", "entered", "create", "delete", "exists", "iproute", "netlink", "session", "list_names", "host", "ifindex"]

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_dir_lock = threading.Lock()
_dir_ready: set[str] = set()


def _check(ret: int, op: str, target: str) -> None:
    if ret != 0:
        raise KernelError(op, target, ctypes.get_errno())


@contextmanager
def entered(path: str | None) -> Iterator[None]:
    """Run the body with the calling thread inside the netns at ``path`` (None: stay)."""
    if path is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KernelError("setns", path, errno.ENOENT) from None
        try:
            _check(_libc.setns(target, CLONE_NEWNET), "setns", path)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _check(_libc.setns(own, CLONE_NEWNET), "setns", "(back to own netns)")
    finally:
        os.close(own)


def iproute(path: str | None = None):  # -> pyroute2.IPRoute
    """A netlink socket bound to the netns at ``path`` (None: the engine's own). Close it."""
    from pyroute2 import IPRoute

    with entered(path):
        return _made(IPRoute(), path)


_home: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # socket -> (netns path or None, netns inode)


def _inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _made(ipr: Any, path: str | None) -> Any:
    """Remember where a socket made here lives (the calling thread is in its netns now)."""
    _home[ipr] = (path, _inode())
    return ipr


def ifindex(ipr: Any, name: str) -> int | None:
    """The index of link ``name`` in the netns of ``ipr``, with one ioctl (SIOCGIFINDEX) in that
    netns instead of an RTM_GETLINK, whose answer is slow for pyroute2 to decode. None: no
    such link. Raises LookupError for a socket this module did not make (its netns is unknown)
    or whose netns the calling thread cannot be sure to be in: then ask netlink."""
    path, inode = _home.get(ipr, (None, None))
    if inode is None:
        raise LookupError(name)
    with entered(path):
        if _inode() != inode:  # not the socket's netns (another thread's, or a netns made again under that name)
            raise LookupError(name)
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None


_session = threading.local()  # .sockets: netns path -> IPRoute, while a session is open on this thread


@contextmanager
def session() -> Iterator[None]:
    """Share one netlink socket per netns among the body's ``netlink`` calls; close them at
    the end. Nested sessions join the outermost one."""
    if getattr(_session, "sockets", None) is not None:
        yield
        return
    _session.sockets = {}
    try:
        yield
    finally:
        sockets, _session.sockets = _session.sockets, None
        for ipr in sockets.values():
            ipr.close()


@contextmanager
def netlink(path: str) -> Iterator:
    """A netlink socket in the netns at ``path``: the session's, or one of its own closed after the body."""
    sockets = getattr(_session, "sockets", None)
    if sockets is None:
        ipr = iproute(path)
        try:
            yield ipr
        finally:
            ipr.close()
        return
    if path not in sockets:
        sockets[path] = iproute(path)
    yield sockets[path]


def _forget(path: str) -> None:
    """Close the session's socket in the netns at ``path``, if there is one."""
    sockets = getattr(_session, "sockets", None)
    if sockets and path in sockets:
        sockets.pop(path).close()


def _ensure_dir(directory: str) -> None:
    """Make the directory a shared mount point, as ``ip netns`` does.

    Shared propagation lets the unmount of a namespace reach every mount namespace
    that copied it (containers), so a deleted netns really goes away.
    """
    with _dir_lock:
        if directory in _dir_ready:
            return
        os.makedirs(directory, exist_ok=True)
        d = directory.encode()
        if _libc.mount(b"none", d, None, MS_SHARED | MS_REC, None) != 0:
            _check(_libc.mount(d, d, b"none", MS_BIND | MS_REC, None), "mount --bind", directory)
            _check(_libc.mount(b"none", d, None, MS_SHARED | MS_REC, None), "mount --make-shared", directory)
        _dir_ready.add(directory)


def create(name: str, directory: str = NETNS_DIR) -> str:
    """Create a named netns with ``lo`` up; returns its path."""
    _ensure_dir(directory)
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", name)
        try:
            src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
            _check(_libc.mount(src, path.encode(), b"none", MS_BIND, None), "mount --bind", path)
            from pyroute2 import IPRoute

            ipr = _made(IPRoute(), path)
            try:
                ipr.link("set", index=1, state="up")
            except BaseException:
                ipr.close()
                raise
            sockets = getattr(_session, "sockets", None)
            if sockets is None:
                ipr.close()
            else:
                sockets[path] = ipr  # the rest of the operation configures the netns through it
        finally:
            _check(_libc.setns(own, CLONE_NEWNET), "setns", "(back to own netns)")
    except BaseException:
        _forget(path)
        _libc.umount2(path.encode(), MNT_DETACH)
        os.unlink(path)
        raise
    finally:
        os.close(own)
    return path


def delete(path: str) -> None:
    """Unmount and remove a named netns; a missing one is fine."""
    _forget(path)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise KernelError("umount", path, err)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def exists(path: str) -> bool:
    return os.path.exists(path)


def list_names(directory: str = NETNS_DIR) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


_host_lock = threading.Lock()
_host_ipr = None


@contextmanager
def host() -> Iterator:
    """The engine's warm netlink socket in its own netns, one user at a time."""
    global _host_ipr
    with _host_lock:
        if _host_ipr is None:
            from pyroute2 import IPRoute

            _host_ipr = _made(IPRoute(), None)
        yield _host_ipr
