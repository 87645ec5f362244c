"""nftables: netcore's own table, changed only in atomic JSON batches through libnftables.

The engine owns one ``inet`` table (``netcore``, or ``netcore-<tag>`` for an engine
with another root dir) and never touches anyone else's rules. Its base chains
dispatch through verdict maps to per-network chains, so adding or removing a
network is one transaction that adds or removes map elements and chains:

    forward      iifname vmap @fwd_in ; oifname vmap @fwd_out
    postrouting  ip saddr vmap @post_src            (nat)
                 ip saddr 127.0.0.0/8 ct status dnat masquerade   (localhost -> published port)
    prerouting   fib daddr type local -> jump dnat  (nat, port publishing)
    output       fib daddr type local -> jump dnat  (nat)
    dnat         dnat to ip daddr . l4proto . dport map @ip_addr : (same key) map @ip_port
                                                     (-p IP:HOST:CPORT)
                 dnat to l4proto . dport map @any_addr : (same key) map @any_port
                                                     (-p HOST:CPORT)
    input        iifname @net_ifs ip daddr 127.0.0.0/8: drop unless it is a reply
                 (bridges get route_localnet for localhost publishing; this keeps
                 containers away from the host's loopback services)
    loopback     (filter, prerouting, raw priority, before any DNAT)
                 iifname != lo ip daddr 127.0.0.0/8 drop
                 (a port published on 127.0.0.1 is for the host alone: without
                 this, a neighbour routing 127/8 to the host is DNATed before the
                 kernel's martian check; the class of CVE-2020-8558)

Published ports are map elements, so publishing is O(1) in the number of ports
already published. (Address and port sit in two maps rather than one map with
concatenated data: nft 1.0.6 crashes on the latter in JSON.) Drivers build the commands as data (JSON dicts) and
hand them to ``Firewall.apply``; ``publish``/``unpublish`` manage the port maps.
"""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from netcore.errors import KernelError
from netcore.models import PortBinding
from netcore.osl import netns
from netcore.osl.nftrules import cmd, ct_dnat, jump, prefix, rule

if TYPE_CHECKING:
    from netcore.osl.nftwatch import TableWatch

__all__ = ["Firewall", "cmd", "jump", "rule", "prefix"]

LOOPBACK = "127.0.0.0/8"
DOCKER_USER = ("ip", "filter", "DOCKER-USER")  # where Docker lets other tools accept forwarded traffic
OUR_IFNAMES = ("ncbr-*", "ncve-*", "netcore0")  # bridges, veths, the default bridge

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


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


class Firewall:
    """The engine's nftables table. ``apply`` runs a list of commands as one transaction."""

    family = "inet"

    def __init__(self, table: str, netns_path: str | None = None) -> None:
        self.table = table
        self.netns_path = netns_path  # None: the engine's own netns
        self._lock = threading.Lock()
        self._ctx: Any = None

    def _run(self, text: str) -> str:
        lib = _Lib.get()
        # libnftables talks netlink in the namespace it runs in: enter the table's
        with self._lock, netns.entered(self.netns_path):
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
        """Create the table and its base chains if they are not there yet (and what was added since)."""
        if not self.exists():
            self.apply(self.base_commands())
        else:
            self.apply(self.added_sets() + self.loopback_guard())
        self.coexist()

    def _docker_user_rules(self) -> list[dict[str, Any]]:
        """Our rules in Docker's DOCKER-USER chain (empty when there is no such chain)."""
        fam, table, chain = DOCKER_USER
        try:
            out = self._run(json.dumps({"nftables": [{"list": {"chain": {"family": fam, "table": table, "name": chain}}}]}))
        except KernelError:
            return []
        rules = [o["rule"] for o in json.loads(out).get("nftables", []) if "rule" in o] if out.strip() else []
        return [r for r in rules if r.get("comment") == self.table]

    def coexist(self) -> None:
        """Where Docker runs, let forwarded traffic of netcore's interfaces past its FORWARD policy.

        Docker sets the iptables FORWARD policy to DROP, and with br_netfilter even bridged
        traffic meets it; an accept in any other table does not help (every base chain
        must accept). DOCKER-USER is the chain Docker keeps for other tools' rules: an
        accept there for ``ncbr-*``, ``ncve-*`` and ``netcore0`` skips only Docker's own
        verdict, while this table's rules still isolate and filter. Idempotent; nothing
        happens on a host without Docker. Networks with a custom bridge name need a rule
        of their own there.
        """
        fam, table, chain = DOCKER_USER
        try:
            self._run(json.dumps({"nftables": [{"list": {"chain": {"family": fam, "table": table, "name": chain}}}]}))
        except KernelError:
            return
        if self._docker_user_rules():
            return
        self.apply(
            [
                {"insert": {"rule": {"family": fam, "table": table, "chain": chain, "comment": self.table,
                                     "expr": [_eq(_meta(key), pattern), {"accept": None}]}}}
                for key in ("oifname", "iifname")
                for pattern in OUR_IFNAMES
            ]
        )

    def uncoexist(self) -> None:
        """Take this engine's rules out of DOCKER-USER again."""
        fam, table, chain = DOCKER_USER
        for r in self._docker_user_rules():
            try:
                self.apply([{"delete": {"rule": {"family": fam, "table": table, "chain": chain, "handle": r["handle"]}}}])
            except KernelError:
                pass

    def added_sets(self) -> list[dict[str, Any]]:
        """Sets newer than some tables already in the kernel: ``add`` is idempotent."""
        return [cmd("add", "set", family=self.family, table=self.table, name="net_pools", type="ipv4_addr", flags=["interval"])]

    def loopback_guard(self) -> list[dict[str, Any]]:
        """Drop packets for 127.0.0.0/8 that arrive on any interface but ``lo`` (idempotent).

        At raw priority, before conntrack's NAT: replies of localhost publishing still
        carry the bridge's address there (masquerade is undone later), so they pass.
        """
        f, t = self.family, self.table
        return [
            cmd("add", "chain", family=f, table=t, name="loopback", type="filter", hook="prerouting", prio=-300, policy="accept"),
            cmd("flush", "chain", family=f, table=t, name="loopback"),
            rule(f, t, "loopback", {"match": {"op": "!=", "left": _meta("iifname"), "right": "lo"}},
                 _eq(_ip("daddr"), prefix(LOOPBACK)), {"drop": None}),
        ]

    def publish(self, container_ip: str, bindings: Iterable[PortBinding]) -> None:
        """DNAT each binding's host port to ``container_ip`` (idempotent)."""
        commands = []
        for b in bindings:
            kind, key = _port_key(b)
            commands.append(cmd("add", "element", family=self.family, table=self.table, name=f"{kind}_addr", elem=[[key, container_ip]]))
            commands.append(cmd("add", "element", family=self.family, table=self.table, name=f"{kind}_port", elem=[[key, b.container_port]]))
        self.apply(commands)

    def prune_ports(self, keep: Iterable[tuple[str, PortBinding]]) -> int:
        """Delete DNAT entries that are not ``keep``'s ``(container_ip, binding)``; returns how many.

        A killed engine can leave entries of a publish it never recorded (or one
        pointing at an address it since gave back); ``add element`` would not replace
        them, so they go before the stored bindings are programmed again.
        """
        wanted: dict[tuple[str, str], tuple[str, int]] = {}
        for ip, b in keep:
            kind, key = _port_key(b)
            wanted[(kind, json.dumps(key["concat"]))] = (ip, b.container_port)
        elems: dict[str, list[Any]] = {}
        for o in self.list():
            m = o.get("map")
            if m and m.get("name") in ("any_addr", "any_port", "ip_addr", "ip_port"):
                elems[m["name"]] = m.get("elem") or []
        stale = []
        for kind in ("any", "ip"):
            ports = {json.dumps(k["concat"]): v for k, v in elems.get(f"{kind}_port", [])}
            for k, addr in elems.get(f"{kind}_addr", []):
                key = json.dumps(k["concat"])
                if wanted.get((kind, key)) != (addr, ports.get(key)):
                    stale.append((kind, k))
        self.apply([
            cmd("delete", "element", family=self.family, table=self.table, name=f"{kind}_{part}", elem=[k])
            for kind, k in stale
            for part in ("addr", "port")
        ])
        return len(stale)

    def unpublish(self, bindings: Iterable[PortBinding]) -> None:
        """Remove the bindings' DNAT entries; ones already gone are fine."""
        commands = [
            cmd("delete", "element", family=self.family, table=self.table, name=f"{kind}_{part}", elem=[key])
            for b in bindings
            for kind, key in [_port_key(b)]
            for part in ("addr", "port")
        ]
        try:
            self.apply(commands)
        except KernelError:  # some already gone: the batch was refused as a whole
            for c in commands:
                try:
                    self.apply([c])
                except KernelError:
                    pass

    def watch(self, on_gone: Callable[[], None]) -> TableWatch:
        """Call ``on_gone`` when someone deletes this table (``nft flush ruleset``); ``stop()`` the result."""
        from netcore.osl.nftwatch import TableWatch

        return TableWatch(self.family, self.table, on_gone, self.exists, self.netns_path)

    def delete(self) -> None:
        self.uncoexist()
        if self.exists():
            self.apply([cmd("delete", "table", family=self.family, name=self.table)])

    def base_commands(self) -> list[dict[str, Any]]:
        f, t = self.family, self.table
        return [
            cmd("add", "table", family=f, name=t),
            cmd("add", "set", family=f, table=t, name="net_ifs", type="ifname"),
            *self.added_sets(),  # net_pools: address pools of routed networks (isolation by prefix)
            cmd("add", "map", family=f, table=t, name="fwd_in", type="ifname", map="verdict"),
            cmd("add", "map", family=f, table=t, name="fwd_out", type="ifname", map="verdict"),
            cmd("add", "map", family=f, table=t, name="post_src", type="ipv4_addr", map="verdict", flags=["interval"]),
            cmd("add", "map", family=f, table=t, name="any_addr", type=_ANY_KEY, map="ipv4_addr"),
            cmd("add", "map", family=f, table=t, name="any_port", type=_ANY_KEY, map="inet_service"),
            cmd("add", "map", family=f, table=t, name="ip_addr", type=_IP_KEY, map="ipv4_addr"),
            cmd("add", "map", family=f, table=t, name="ip_port", type=_IP_KEY, map="inet_service"),
            cmd("add", "chain", family=f, table=t, name="forward", type="filter", hook="forward", prio=0, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="postrouting", type="nat", hook="postrouting", prio=100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="prerouting", type="nat", hook="prerouting", prio=-100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="output", type="nat", hook="output", prio=-100, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="input", type="filter", hook="input", prio=0, policy="accept"),
            cmd("add", "chain", family=f, table=t, name="dnat"),
            rule(f, t, "forward", {"vmap": {"key": _meta("iifname"), "data": "@fwd_in"}}),
            rule(f, t, "forward", {"vmap": {"key": _meta("oifname"), "data": "@fwd_out"}}),
            rule(f, t, "postrouting", {"vmap": {"key": _ip("saddr"), "data": "@post_src"}}),
            rule(f, t, "postrouting", _eq(_ip("saddr"), prefix(LOOPBACK)), ct_dnat(), {"masquerade": None}),
            rule(f, t, "prerouting", _fib_local(), jump("dnat")),
            rule(f, t, "output", _fib_local(), jump("dnat")),
            rule(f, t, "dnat", _dnat_by({"concat": [_ip("daddr"), _L4PROTO, _DPORT]}, "ip")),
            rule(f, t, "dnat", _dnat_by({"concat": [_L4PROTO, _DPORT]}, "any")),
            rule(f, t, "input", _eq(_meta("iifname"), "@net_ifs"), _eq(_ip("daddr"), prefix(LOOPBACK)), ct_dnat(), {"accept": None}),
            rule(f, t, "input", _eq(_meta("iifname"), "@net_ifs"), _eq(_ip("daddr"), prefix(LOOPBACK)), {"drop": None}),
            *self.loopback_guard(),
        ]

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                _Lib.get().nft_ctx_free(self._ctx)
                self._ctx = None


_ANY_KEY = ["inet_proto", "inet_service"]
_IP_KEY = ["ipv4_addr", "inet_proto", "inet_service"]
_L4PROTO = {"meta": {"key": "l4proto"}}
_DPORT = {"payload": {"protocol": "th", "field": "dport"}}


def _ip(field: str) -> dict[str, Any]:
    return {"payload": {"protocol": "ip", "field": field}}


def _eq(left: Any, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": left, "right": right}}




def _dnat_by(key: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"dnat": {"family": "ip", "addr": {"map": {"key": key, "data": f"@{kind}_addr"}}, "port": {"map": {"key": key, "data": f"@{kind}_port"}}}}


def _port_key(b: PortBinding) -> tuple[str, dict[str, Any]]:
    """The maps (``ip_*`` when bound to one host address, else ``any_*``) and key of a concrete binding."""
    if b.host_ip:
        return "ip", {"concat": [b.host_ip, b.proto, b.host_port]}
    return "any", {"concat": [b.proto, b.host_port]}


def _fib_local() -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
