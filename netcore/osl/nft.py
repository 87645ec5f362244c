"""nftables: netcore's own table, changed only in atomic JSON batches through libnftables.

The engine owns one ``inet`` table (``netcore``, or ``netcore-<tag>`` for an engine
with another root dir) and never touches anyone else's rules. Its base chains
dispatch through verdict maps to per-network chains, so adding or removing a
network is one transaction that adds or removes map elements and chains:

    forward      iifname vmap @fwd_in ; oifname vmap @fwd_out
    postrouting  ip saddr vmap @post_src            (nat)
    prerouting   fib daddr type local -> jump dnat  (nat, port publishing)
    output       fib daddr type local -> jump dnat  (nat)

Drivers build the commands as data (JSON dicts) and hand them to ``Firewall.apply``.
"""

from __future__ import annotations

import ctypes
import json
import threading
from typing import Any

from netcore.errors import KernelError

__all__ = ["Firewall", "cmd", "jump", "rule", "prefix"]

_NFT_CTX_OUTPUT_JSON = 1 << 4


class _Lib:
    """The libnftables handle, loaded once per process."""

    _lib: Any = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> Any:
        with cls._lock:
            if cls._lib is None:
                try:
                    lib = ctypes.CDLL("libnftables.so.1")
                except OSError as exc:
                    raise KernelError("load", "libnftables.so.1", f"{exc} (install the nftables package)") from None
                lib.nft_ctx_new.restype = ctypes.c_void_p
                lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
                lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
                lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
                lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
                lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
                lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
                cls._lib = lib
            return cls._lib


def cmd(verb: str, kind: str, **fields: Any) -> dict[str, Any]:
    """One JSON command, e.g. ``cmd("add", "chain", family="inet", table="t", name="c")``."""
    return {verb: {kind: fields}}


def jump(chain: str) -> dict[str, Any]:
    return {"jump": {"target": chain}}


def prefix(cidr: str) -> dict[str, Any]:
    addr, length = cidr.split("/")
    return {"prefix": {"addr": addr, "len": int(length)}}


def rule(family: str, table: str, chain: str, *expr: dict[str, Any], comment: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"family": family, "table": table, "chain": chain, "expr": list(expr)}
    if comment:
        fields["comment"] = comment
    return {"add": {"rule": fields}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


class Firewall:
    """The engine's nftables table. ``apply`` runs a list of commands as one transaction."""

    family = "inet"

    def __init__(self, table: str) -> None:
        self.table = table
        self._lock = threading.Lock()
        self._ctx: Any = None

    def _run(self, text: str) -> str:
        lib = _Lib.get()
        with self._lock:
            if self._ctx is None:
                self._ctx = lib.nft_ctx_new(0)
                lib.nft_ctx_output_set_flags(self._ctx, _NFT_CTX_OUTPUT_JSON)
                lib.nft_ctx_buffer_output(self._ctx)
                lib.nft_ctx_buffer_error(self._ctx)
            rc = lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
            out = (lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
        if rc != 0:
            first = next((ln for ln in err.splitlines() if ln.strip()), "nft failed")
            raise KernelError("nft", self.table, first.strip())
        return out

    def apply(self, commands: list[dict[str, Any]]) -> None:
        if commands:
            self._run(json.dumps({"nftables": commands}))

    def exists(self) -> bool:
        try:
            self._run(json.dumps({"nftables": [{"list": {"table": {"family": self.family, "name": self.table}}}]}))
            return True
        except KernelError:
            return False

    def list(self) -> list[dict[str, Any]]:
        out = self._run(json.dumps({"nftables": [{"list": {"table": {"family": self.family, "name": self.table}}}]}))
        return json.loads(out)["nftables"] if out.strip() else []

    def ensure(self) -> None:
        """Create the table and its base chains if they are not there yet."""
        if not self.exists():
            self.apply(self.base_commands())

    def delete(self) -> None:
        if self.exists():
            self.apply([cmd("delete", "table", family=self.family, name=self.table)])

    def base_commands(self) -> list[dict[str, Any]]:
        f, t = self.family, self.table
        return [
            cmd("add", "table", family=f, name=t),
            cmd("add", "set", family=f, table=t, name="net_ifs", type="ifname"),
            cmd("add", "map", family=f, table=t, name="fwd_in", type="ifname", map="verdict"),
            cmd("add", "map", family=f, table=t, name="fwd_out", type="ifname", map="verdict"),
            cmd("add", "map", family=f, table=t, name="post_src", type="ipv4_addr", map="verdict", flags=["interval"]),
            cmd("add", "chain", family=f, table=t, name="forward", type="filter", hook="forward", prio=0, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="postrouting", type="nat", hook="postrouting", prio=100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="prerouting", type="nat", hook="prerouting", prio=-100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="output", type="nat", hook="output", prio=-100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="dnat"),
            rule(f, t, "forward", {"vmap": {"key": _meta("iifname"), "data": "@fwd_in"}}),
            rule(f, t, "forward", {"vmap": {"key": _meta("oifname"), "data": "@fwd_out"}}),
            rule(f, t, "postrouting", {"vmap": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "data": "@post_src"}}),
            rule(f, t, "prerouting", _fib_local(), jump("dnat")),
            rule(f, t, "output", _fib_local(), jump("dnat")),
        ]

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                _Lib.get().nft_ctx_free(self._ctx)
                self._ctx = None


def _fib_local() -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
