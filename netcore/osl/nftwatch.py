"""Notice at once when someone deletes an nftables table (``nft flush ruleset`` does).

The engine's isolation and published ports live in its table; a ``flush ruleset``
(an admin, a firewall reload) removes them silently. ``TableWatch`` listens on the
kernel's nftables notification group (NFNLGRP_NFTABLES) in the table's netns and
calls ``on_gone`` from its own thread when a DELTABLE for the table arrives, or when
notifications were lost (ENOBUFS) and the table is no longer there, so the engine
can restore it from its store within moments.

A plain netlink socket in a thread: only the header of each message and the table's
name attribute are read, and the socket's timeout (poll, never select) lets
``stop`` end the thread within ``TICK`` seconds.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
from collections.abc import Callable

from netcore.osl import netns

__all__ = ["TableWatch", "deleted_tables"]

log = logging.getLogger("netcore.nftwatch")

NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFT_MSG_DELTABLE = (10 << 8) | 2  # NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELTABLE
NFTA_TABLE_NAME = 1
FAMILIES = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
TICK = 0.5
_NLMSG = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id
_NLA = struct.Struct("=HH")  # nlattr: len, type


def deleted_tables(buf: bytes) -> list[tuple[int, str]]:
    """``(family, name)`` of every DELTABLE message in a buffer of netlink messages."""
    out = []
    offset = 0
    while offset + _NLMSG.size <= len(buf):
        length, mtype = _NLMSG.unpack_from(buf, offset)[:2]
        if length < _NLMSG.size:
            break
        if mtype == NFT_MSG_DELTABLE and length >= _NLMSG.size + _NFGEN.size:
            family = _NFGEN.unpack_from(buf, offset + _NLMSG.size)[0]
            pos, end = offset + _NLMSG.size + _NFGEN.size, offset + length
            while pos + _NLA.size <= end:
                alen, atype = _NLA.unpack_from(buf, pos)
                if alen < _NLA.size:
                    break
                if atype & 0x3FFF == NFTA_TABLE_NAME:
                    out.append((family, buf[pos + _NLA.size : pos + alen].split(b"\0", 1)[0].decode(errors="replace")))
                    break
                pos += (alen + 3) & ~3
        offset += (length + 3) & ~3
    return out


class TableWatch:
    """Calls ``on_gone()`` (from the watch's thread) whenever the table is deleted."""

    def __init__(self, family: str, table: str, on_gone: Callable[[], None], exists: Callable[[], bool], netns_path: str | None = None) -> None:
        self.family, self.table = FAMILIES[family], table
        self.on_gone, self.exists = on_gone, exists
        self._stop = threading.Event()
        with netns.entered(netns_path):  # a netlink socket stays in the netns it was made in
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
        try:
            self._sock.bind((0, 0))
            self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTABLES)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.settimeout(TICK)
        except BaseException:
            self._sock.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"nftwatch-{table}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                buf = self._sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                if exc.errno == errno.ENOBUFS:  # notifications lost: look instead
                    self._check()
                    continue
                log.warning("nftables watch of %s stopped: %s", self.table, exc)
                return
            if (self.family, self.table) in deleted_tables(buf):
                self._fire()

    def _check(self) -> None:
        try:
            gone = not self.exists()
        except Exception as exc:
            log.warning("nftables watch of %s: %s", self.table, exc)
            return
        if gone:
            self._fire()

    def _fire(self) -> None:
        if self._stop.is_set():
            return
        try:
            self.on_gone()
        except Exception:
            log.exception("restoring nftables table %s failed", self.table)

    def stop(self) -> None:
        """End the thread (within ``TICK``) and close the socket; idempotent."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=TICK * 4)
        self._sock.close()
