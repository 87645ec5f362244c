"""The embedded DNS's name index: which names each endpoint has, seen from which sandbox.

Pure data, no sockets, no locks (the plugin serialises access). Scoping is by the
querying sandbox: it sees only the networks it has a resolution-enabled endpoint
on, in its join order, so names never leak across networks. Everything is keyed by
endpoint, network and sandbox id and dropped with the last record that needs it,
so memory stays proportional to the endpoints that exist now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netcore.models import Endpoint, Network, Sandbox
from netcore.names import GATEWAY_NETWORK

__all__ = ["Record", "SandboxEntry", "NameIndex", "resolution_enabled", "endpoint_names", "normalize"]


def resolution_enabled(network: Network, sandbox: Sandbox) -> bool:
    """Docker's rule: no embedded names on the predefined networks nor in the host's namespace,
    nor on the gateway bridge (every overlay container is on it: names would cross overlays)."""
    return not network.predefined and network.name != GATEWAY_NETWORK and sandbox.netns_path is not None


def normalize(name: str) -> str:
    """The index's spelling of a DNS name: lower case, no trailing dot."""
    return name.strip().rstrip(".").lower()


def endpoint_names(endpoint: Endpoint, sandbox: Sandbox) -> tuple[str, ...]:
    """Container name, aliases, hostname, short id; normalised, empty ones and repeats dropped."""
    out: list[str] = []
    for raw in (sandbox.name or endpoint.name, *endpoint.aliases, sandbox.hostname, sandbox.id[:12]):
        name = normalize(raw or "")
        if name and name not in out:
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class Record:
    """One resolution-enabled endpoint: its names and its address on its network."""

    endpoint_id: str
    sandbox_id: str
    network_id: str
    ip: str
    names: tuple[str, ...]  # normalised; names[0] is the container's name (the PTR answer)


@dataclass
class SandboxEntry:
    """What the server needs to know about a querying sandbox."""

    id: str
    netns_path: str | None
    dns_servers: tuple[str, ...]
    endpoint_ids: list[str] = field(default_factory=list)  # its records, in join order


@dataclass
class _Net:
    name: str  # normalised network name, for NAME.NETWORK
    internal: bool
    by_name: dict[str, list[Record]] = field(default_factory=dict)
    by_ip: dict[str, Record] = field(default_factory=dict)


class NameIndex:
    """Records of every resolution-enabled endpoint, by network, name and address."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._nets: dict[str, _Net] = {}
        self._sandboxes: dict[str, SandboxEntry] = {}

    def __len__(self) -> int:
        return len(self._records)

    # ------------------------------------------------------------ updates -----

    def add(self, network: Network, endpoint: Endpoint, sandbox: Sandbox) -> Record:
        """Index ``endpoint`` (replacing an older record of the same id)."""
        rec = self._insert(network, endpoint, sandbox.id, endpoint_names(endpoint, sandbox))
        sb = self._sandboxes.get(sandbox.id)
        if sb is None:
            sb = self._sandboxes[sandbox.id] = SandboxEntry(sandbox.id, sandbox.netns_path, ())
        sb.netns_path, sb.dns_servers = sandbox.netns_path, tuple(sandbox.dns_servers)
        sb.endpoint_ids.append(rec.endpoint_id)
        order = {eid: i for i, eid in enumerate(sandbox.endpoints)}  # the sandbox's join order, when known
        sb.endpoint_ids.sort(key=lambda eid: order.get(eid, len(order)))
        return rec

    def add_peer(self, network: Network, endpoint: Endpoint) -> Record:
        """Index an endpoint of another host (global networks): its names, no sandbox of ours."""
        names = tuple(dict.fromkeys(n for n in (normalize(x) for x in endpoint.dns_names or [endpoint.name]) if n))
        return self._insert(network, endpoint, "", names)

    def _insert(self, network: Network, endpoint: Endpoint, sandbox_id: str, names: tuple[str, ...]) -> Record:
        if endpoint.ip is None:
            raise ValueError(f"endpoint {endpoint.id[:12]} has no address")
        self.remove(endpoint.id)
        rec = Record(endpoint.id, sandbox_id, network.id, endpoint.ip, names)
        net = self._nets.get(network.id)
        if net is None:
            net = self._nets[network.id] = _Net(normalize(network.name), network.internal)
        for name in rec.names:
            net.by_name.setdefault(name, []).append(rec)
        net.by_ip[rec.ip] = rec
        self._records[rec.endpoint_id] = rec
        return rec

    def remove(self, endpoint_id: str) -> Record | None:
        """Forget an endpoint; returns its record (None: it was not indexed)."""
        rec = self._records.pop(endpoint_id, None)
        if rec is None:
            return None
        net = self._nets[rec.network_id]
        for name in rec.names:
            left = [r for r in net.by_name.get(name, ()) if r.endpoint_id != endpoint_id]
            if left:
                net.by_name[name] = left
            else:
                net.by_name.pop(name, None)
        if net.by_ip.get(rec.ip) is rec:
            del net.by_ip[rec.ip]
        if not net.by_ip and not net.by_name:
            del self._nets[rec.network_id]
        sb = self._sandboxes.get(rec.sandbox_id)  # None for another host's endpoint
        if sb is not None:
            sb.endpoint_ids.remove(endpoint_id)
            if not sb.endpoint_ids:
                del self._sandboxes[rec.sandbox_id]
        return rec

    def drop_network(self, network_id: str) -> list[Record]:
        """Forget every record on a deleted network; returns them."""
        ids = [r.endpoint_id for r in self._records.values() if r.network_id == network_id]
        return [rec for eid in ids if (rec := self.remove(eid)) is not None]

    # ------------------------------------------------------------ queries -----

    def sandbox(self, sandbox_id: str) -> SandboxEntry | None:
        """The querying sandbox, if it has at least one resolution-enabled endpoint."""
        return self._sandboxes.get(sandbox_id)

    def sandboxes(self) -> list[str]:
        return list(self._sandboxes)

    def _nets_of(self, sandbox_id: str) -> list[_Net]:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            return []
        return [self._nets[self._records[eid].network_id] for eid in sb.endpoint_ids]

    def lookup(self, sandbox_id: str, qname: str) -> list[str] | None:
        """Addresses of ``qname`` as ``sandbox_id`` sees it; None: no such name there.

        The plain name is tried first on each of the sandbox's networks in join
        order, then ``NAME.NETWORK`` splits (last dot first, as Docker does, so
        network names may contain dots). The first network where the name exists
        answers, with every endpoint there that has it (a shared alias).
        """
        name = normalize(qname)
        nets = self._nets_of(sandbox_id)
        candidates = [(name, None)]
        cut = len(name)
        while (cut := name.rfind(".", 0, cut)) > 0:
            candidates.append((name[:cut], name[cut + 1 :]))
        for short, netname in candidates:
            for net in nets:
                if netname is not None and net.name != netname:
                    continue
                recs = net.by_name.get(short)
                if recs:
                    return [r.ip for r in recs]
        return None

    def reverse(self, sandbox_id: str, ip: str) -> str | None:
        """The container name at ``ip`` on one of the sandbox's networks (None: none there)."""
        for net in self._nets_of(sandbox_id):
            rec = net.by_ip.get(ip)
            if rec is not None:
                return rec.names[0]
        return None

    def internal_only(self, sandbox_id: str) -> bool:
        """True when every network the sandbox resolves on is internal: no forwarding then."""
        nets = self._nets_of(sandbox_id)
        return bool(nets) and all(n.internal for n in nets)
