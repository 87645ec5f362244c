"""Links: bridges, veth pairs, any other kind through ``create``, their state, names and aliases."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import NetlinkError

from netcore.errors import AlreadyExists, KernelError
from netcore.osl import netns

__all__ = [
    "Link",
    "UnsupportedKind",
    "kernel_errors",
    "lookup",
    "get",
    "create",
    "ports",
    "create_bridge",
    "create_veth",
    "create_vxlan",
    "move",
    "set_master",
    "set_bridge_port",
    "set_up",
    "rename",
    "delete",
    "owned",
]


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None
    mac: str | None
    mtu: int
    up: bool
    alias: str | None
    master: int | None


class UnsupportedKind(KernelError):
    """The kernel has no links of this kind (this one has no dummy, ipvlan or vlan)."""


@contextmanager
def kernel_errors(op: str, target: str) -> Iterator[None]:
    """Turn pyroute2's NetlinkError into netcore's categories."""
    try:
        yield
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise AlreadyExists(f"{op} {target}: already exists") from None
        raise KernelError(op, target, exc.code) from None


def _link(msg: Any) -> Link:
    return Link(
        index=msg["index"],
        name=msg.get("ifname"),
        kind=msg.get(("linkinfo", "kind")),
        mac=msg.get("address"),
        mtu=msg.get("mtu"),
        up=bool(msg["flags"] & 1),
        alias=msg.get("ifalias"),
        master=msg.get("master"),
    )


def lookup(ipr: Any, name: str) -> int | None:
    """The index of link ``name`` in ``ipr``'s netns, None if there is none."""
    try:
        return netns.ifindex(ipr, name)  # an ioctl, for the sockets netns.py made
    except LookupError:
        found = ipr.link_lookup(ifname=name)
        return found[0] if found else None


def get(ipr: Any, index: int) -> Link | None:
    try:
        return _link(ipr.link("get", index=index)[0])
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise KernelError("get link", str(index), exc.code) from None


def create(
    ipr: Any,
    name: str,
    kind: str,
    *,
    alias: str | None = None,
    lower: int | None = None,
    netns_path: str | None = None,
    mac: str | None = None,
    mtu: int | None = None,
    up: bool = False,
    **attrs: Any,
) -> int | None:
    """A link of any ``kind`` the kernel has (macvlan, vlan, veth, dummy ...); returns its index.

    ``attrs`` are the kind's own attributes under pyroute2's names (``macvlan_mode="bridge"``,
    ``vlan_id=10``, ``peer={"ifname": ...}``). ``lower`` is the index of the link it stacks on
    (a macvlan's or a VLAN's parent, in ``ipr``'s netns). With ``netns_path`` the link is
    made directly inside that netns in the same netlink call (a macvlan keeps its parent in
    ``ipr``'s netns), and its index there is not known here: None is returned.
    The alias is set after creation (the kernel ignores it on creation), in ``ipr``'s netns
    only: a link made elsewhere is named by where it lives. A kind the kernel lacks is a
    ``KernelError`` saying so, and nothing is left behind on any failure.
    """
    extra: dict[str, Any] = dict(attrs)
    if lower is not None:
        extra["link"] = lower
    if netns_path:
        extra["net_ns_fd"] = netns_path
    if mac:
        extra["address"] = mac
    if mtu:
        extra["mtu"] = mtu
    if up:
        extra["state"] = "up"
    try:
        ipr.link("add", ifname=name, kind=kind, **extra)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            raise AlreadyExists(f"create {kind} {name}: already exists") from None
        if exc.code == errno.EOPNOTSUPP:
            raise UnsupportedKind(f"create {kind}", name, f"this kernel has no {kind} links") from None
        raise KernelError(f"create {kind}", name, exc.code) from None
    if netns_path:
        return None
    index = lookup(ipr, name)
    if index is None:
        raise KernelError(f"create {kind}", name, errno.ENODEV)
    if alias:
        try:
            with kernel_errors(f"set alias of {kind}", name):
                ipr.link("set", index=index, ifalias=alias)
        except BaseException:
            delete(ipr, name)
            raise
    return index


def ports(ipr: Any, master: int) -> list[Link]:
    """The links enslaved to the bridge ``master`` (an index) in ``ipr``'s netns."""
    return [lk for lk in (_link(m) for m in ipr.get_links()) if lk.master == master]


def create_bridge(ipr: Any, name: str, alias: str, mac: str, mtu: int | None = None) -> int:
    """A bridge, up, with its alias; returns the index.

    The bridge gets a fixed MAC: otherwise the kernel lends it the lowest port's,
    and the gateway's MAC changes under the containers when that port leaves.
    The alias is set after creation: the kernel ignores IFLA_IFALIAS on RTM_NEWLINK.
    """
    with kernel_errors("create bridge", name):
        ipr.link("add", ifname=name, kind="bridge", address=mac, **({"mtu": mtu} if mtu else {}))
        index = lookup(ipr, name)
        if index is None:
            raise KernelError("create bridge", name, errno.ENODEV)
        ipr.link("set", index=index, ifalias=alias, state="up")
    return index


def create_veth(
    ipr: Any,
    name: str,
    alias: str,
    peer_name: str,
    peer_netns: str | None = None,
    peer_mac: str | None = None,
    mtu: int | None = None,
    master: int | None = None,
    mac: str | None = None,
) -> None:
    """A veth pair: the host end (attached to ``master`` and up, with ``mac`` if given) and
    the peer, created directly in the netns at ``peer_netns``, in one netlink call; the
    alias in a second one, by name (the kernel ignores an alias on creation). ``lookup``
    the host end if you need its index."""
    peer: dict[str, Any] = {"ifname": peer_name}
    if peer_netns:
        peer["net_ns_fd"] = peer_netns
    if peer_mac:
        peer["address"] = peer_mac
    extra: dict[str, Any] = {}
    if mac:
        extra["address"] = mac
    if mtu:
        extra["mtu"] = mtu
        peer["mtu"] = mtu
    if master is not None:
        extra["master"] = master
    with kernel_errors("create veth", name):
        ipr.link("add", ifname=name, kind="veth", peer=peer, state="up", **extra)
        try:
            ipr.link("set", ifname=name, ifalias=alias)
        except BaseException:
            delete(ipr, name)
            raise


def create_vxlan(ipr: Any, name: str, alias: str, vni: int, local: str, port: int = 4789, mtu: int | None = None) -> int:
    """A VXLAN device in ``ipr``'s netns, programmed statically: learning off, proxy ARP on.

    Its UDP socket (and its claim on the VNI) stays in the netns where it is made
    even after ``move``: make it where the underlay is. Returns the index.
    """
    with kernel_errors("create vxlan", f"{name} (vni {vni})"):
        ipr.link(
            "add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_port=port, vxlan_local=local,
            vxlan_learning=0, vxlan_proxy=1, **({"mtu": mtu} if mtu else {}),
        )
        index = lookup(ipr, name)
        if index is None:
            raise KernelError("create vxlan", name, errno.ENODEV)
        ipr.link("set", index=index, ifalias=alias)
    return index


def move(ipr: Any, index: int, netns_path: str) -> None:
    """Move a link into the netns at ``netns_path`` (it keeps its name)."""
    with kernel_errors("move link", f"{index} into {netns_path}"):
        ipr.link("set", index=index, net_ns_fd=netns_path)


def set_master(ipr: Any, index: int, master: int) -> None:
    with kernel_errors("set master", str(index)):
        ipr.link("set", index=index, master=master)


def set_bridge_port(ipr: Any, index: int, isolated: bool | None = None, hairpin: bool | None = None) -> None:
    """Bridge port flags, in one netlink call.

    ``isolated``: the port reaches only non-isolated ports (the gateway), for icc=false.
    ``hairpin``: frames may leave by the port they came in, so a container reaches
    its own published port through the host's address.
    """
    flags = {k: int(v) for k, v in (("isolated", isolated), ("mode", hairpin)) if v is not None}  # IFLA_BRPORT_MODE: hairpin
    if flags:
        with kernel_errors("set bridge port flags", str(index)):
            ipr.brport("set", index=index, **flags)


def set_up(ipr: Any, index: int, mtu: int | None = None) -> None:
    with kernel_errors("set link up", str(index)):
        ipr.link("set", index=index, state="up", **({"mtu": mtu} if mtu else {}))


def rename(ipr: Any, index: int, name: str) -> None:
    with kernel_errors("rename link", f"{index} to {name}"):
        ipr.link("set", index=index, ifname=name)


def delete(ipr: Any, name: str) -> bool:
    """Delete a link by name; False if it was already gone."""
    try:
        ipr.link("del", ifname=name)
        return True
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise KernelError("delete link", name, exc.code) from None


def owned(ipr: Any, alias_prefix: str) -> list[Link]:
    """Every link whose alias starts with ``alias_prefix`` (netcore's own, for reconcile)."""
    return [lk for lk in (_link(m) for m in ipr.get_links()) if lk.alias and lk.alias.startswith(alias_prefix)]
