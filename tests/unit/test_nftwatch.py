"""Parsing of nftables notifications (netcore/osl/nftwatch.py); the kernel side is
tested in tests/integration/test_cli_firewall.py."""

from __future__ import annotations

import struct

from netcore.osl.nftwatch import NFT_MSG_DELTABLE, deleted_tables

NEWTABLE, DELCHAIN = (10 << 8) | 0, (10 << 8) | 5


def attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def msg(mtype: int, family: int, *attrs: bytes) -> bytes:
    body = struct.pack("=BBH", family, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body


def test_finds_every_deleted_table_in_a_coalesced_buffer():
    buf = b"".join([
        msg(DELCHAIN, 1, attr(1, b"netcore-abc\0"), attr(3, b"forward\0")),
        msg(NFT_MSG_DELTABLE, 1, attr(2, struct.pack("=I", 0)), attr(1, b"netcore-abc\0")),  # name after another attribute
        msg(NEWTABLE, 1, attr(1, b"other\0")),
        msg(NFT_MSG_DELTABLE, 2, attr(1, b"filter\0")),
    ])
    assert deleted_tables(buf) == [(1, "netcore-abc"), (2, "filter")]


def test_other_messages_and_truncated_buffers_yield_nothing():
    assert deleted_tables(msg(NEWTABLE, 1, attr(1, b"netcore\0"))) == []
    whole = msg(NFT_MSG_DELTABLE, 1, attr(1, b"netcore\0"))
    assert deleted_tables(whole[:10]) == []
    assert deleted_tables(b"") == []
    assert deleted_tables(struct.pack("=IHHII", 0, NFT_MSG_DELTABLE, 0, 0, 0)) == []  # a zero length never loops
