"""The engine's listings with Docker's query parameters: ``filters``, ``limit``, ``size``.

``GET /containers/json`` (``ps -a -f ... -n N -s``), ``GET /networks`` (``network ls -f``)
and ``POST /networks/prune`` (``--filter until=/label=``) filter here, in the engine, as
Docker's daemon does; the matching of each key is ``runtime.filters``.
"""

from __future__ import annotations

import os
from typing import Any

from netcore import InvalidConfig, NotFound
from netcore.controller import Controller

from runtime import filters as F
from runtime.api.views import container_summary, network_view
from runtime.engine import process

__all__ = ["containers", "networks", "prune_networks", "prune_matcher", "images", "volumes", "CONTAINER_FILTERS", "NETWORK_FILTERS", "dir_size"]

CONTAINER_FILTERS = ("name", "id", "label", "status", "network", "exited", "ancestor", "before", "since", "volume", "until", "health", "publish",
                     "expose")
HEALTH = ("starting", "healthy", "unhealthy", "none")
NETWORK_FILTERS = ("name", "id", "label", "driver", "scope", "type", "dangling")
NETWORK_PRUNE_FILTERS = ("until", "label", "label!")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def dir_size(path: str) -> int:
    """Bytes of the files under ``path`` (not following links), as Docker's ``SizeRw`` counts them."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for e in entries:
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
    return total


def _created_of(ctr: Any, ref: str) -> float:
    return F.stamp_seconds(ctr.get(ref)["created"])


def container_matcher(ctl: Controller, ctr: Any, f: F.Filters):
    """A predicate over container records for the filters ``f`` (shared by ``ps`` and prunes)."""
    for v in f.values("status"):
        if v not in STATES:
            raise InvalidConfig(f"invalid filter 'status={v}'")
    for v in f.values("publish") + f.values("expose"):
        _port_range(v)
    for v in f.values("health"):
        if v not in HEALTH:
            raise InvalidConfig(f"Unrecognised filter value for health: {v}")
    exited = []
    for v in f.values("exited"):
        try:
            exited.append(int(v))
        except ValueError:
            raise InvalidConfig(f"invalid filter 'exited={v}'") from None
    before = min((_created_of(ctr, v) for v in f.values("before")), default=None)
    since = max((_created_of(ctr, v) for v in f.values("since")), default=None)
    until = min((F.until_cutoff(v) for v in f.values("until")), default=None)
    nets: set[str] = set()
    for v in f.values("network"):
        try:
            net = ctl.network(v)
            nets.update((net.name, net.id))
        except NotFound:
            nets.add(v)

    def ok(rec: dict[str, Any]) -> bool:
        created = F.stamp_seconds(rec["created"])
        return (
            f.name(rec["name"]) and f.ident(rec["id"]) and f.labels(rec.get("labels"))
            and f.any("status", lambda v: _state(rec) == v)
            and (not exited or (rec["state"] == "exited" and (rec["exit_code"] or 0) in exited))
            and f.any("ancestor", lambda v: _ancestor(v, rec))
            and f.any("health", lambda v: _health(ctr, rec) == v)
            and f.any("publish", lambda v: _ports_match(v, rec.get("port_bindings")))
            and f.any("expose", lambda v: _ports_match(v, rec.get("exposed_ports")))
            and (not nets or bool(nets & set(rec["networks"])))
            and f.any("volume", lambda v: any(v in (m.get("Name"), m.get("Source"), m.get("Destination")) for m in rec.get("mounts") or ()))
            and (before is None or created < before)
            and (since is None or created > since)
            and (until is None or created < until)
        )

    return ok


PRUNE_FILTERS = ("until", "label", "label!")


def prune_matcher(ctl: Controller, ctr: Any, raw: str | None):
    """``container prune --filter``: a predicate over container records for ``until`` and
    ``label``/``label!`` (Docker's prune keys), or None when no filter is given."""
    f = F.parse(raw, PRUNE_FILTERS)
    return container_matcher(ctl, ctr, f) if f else None


def _port_range(spec: str) -> tuple[int, int, str]:
    """``80``, ``80/udp``, ``8000-8080/tcp`` -> (first, last, proto)."""
    ports, _, proto = spec.partition("/")
    first, _, last = ports.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise InvalidConfig(f"invalid port range: {spec!r}") from None
    return lo, hi, proto or "tcp"


def _ports_match(spec: str, ports: dict[str, Any] | None) -> bool:
    """Whether a ``PORT/PROTO`` key of ``ports`` (a container's bindings or exposed ports) is in ``spec``'s range."""
    lo, hi, proto = _port_range(spec)
    for key in ports or {}:
        port, _, p = key.partition("/")
        if (p or "tcp") == proto and port.isdigit() and lo <= int(port) <= hi:
            return True
    return False


def _health(ctr: Any, rec: dict[str, Any]) -> str:
    """Docker's health word of a container: ``none`` without a healthcheck."""
    state = ctr.health.state(rec["id"]) if rec["state"] == "running" else None
    return (state or {}).get("Status") or "none"


def _state(rec: dict[str, Any]) -> str:
    """Docker's state word: a running container that is frozen is ``paused``."""
    return "paused" if rec["state"] == "running" and rec.get("paused") else rec["state"]


def _ancestor(ref: str, rec: dict[str, Any]) -> bool:
    image, image_id = rec.get("image") or "host", rec.get("image_id") or "host"
    name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
    ident = ref.removeprefix("sha256:")
    return ref == image or name == image or name == image + ":latest" or (len(ident) >= 3 and image_id.removeprefix("sha256:").startswith(ident))


def containers(ctl: Controller, ctr: Any, images: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /containers/json``: newest first; ``all``, ``limit`` (implies all), ``size``, ``filters``."""
    f = F.parse(query.get("filters"), CONTAINER_FILTERS)
    limit = int(query.get("limit") or 0)
    every = bool(query.get("all")) or limit > 0 or "status" in f or "exited" in f
    recs = ctr.list(all=every)
    if f:
        ok = container_matcher(ctl, ctr, f)
        recs = [r for r in recs if ok(r)]
    if limit > 0:
        recs = recs[:limit]
    out = []
    for rec in recs:
        row = container_summary(ctl, rec)
        if query.get("size"):
            row.update(_sizes(ctr, images, rec))
        out.append(row)
    return out


def _sizes(ctr: Any, images: Any, rec: dict[str, Any]) -> dict[str, int]:
    """Docker's ``SizeRw`` (the container's upper layer) and ``SizeRootFs`` (with its image)."""
    rw = dir_size(process.upper_dirs(ctr.state_dir(rec["id"]))[0])
    try:
        image = images.inspect(rec.get("image_id") or "host")["Size"]
    except Exception:  # an image removed since (the container keeps its layers' id only)
        image = 0
    return {"SizeRw": rw, "SizeRootFs": rw + int(image or 0)}


def network_matcher(f: F.Filters):
    for v in f.values("type"):
        if v not in ("custom", "builtin"):
            raise InvalidConfig(f"invalid filter: 'type'='{v}'")
    until = min((F.until_cutoff(v) for v in f.values("until")), default=None)

    def ok(net: Any) -> bool:
        return (
            f.name(net.name) and f.ident(net.id) and f.labels(net.labels)
            and f.any("driver", lambda v: net.driver == v)
            and f.any("scope", lambda v: net.scope == v)
            and f.any("type", lambda v: (v == "builtin") == bool(net.predefined))
            and (until is None or F.stamp_seconds(net.created) < until)
        )

    return ok


def networks(ctl: Controller, query: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /networks``: every network, or those the ``filters`` keep."""
    f = F.parse(query.get("filters"), NETWORK_FILTERS)
    nets = ctl.networks()
    if f:
        ok = network_matcher(f)
        nets = [n for n in nets if ok(n)]
        if "dangling" in f:
            want = f.values("dangling")[-1].lower() in ("1", "true")
            nets = [n for n in nets if (not n.predefined and not ctl.endpoints(n)) == want]
    return [network_view(ctl, n, driver_state=False) for n in nets]


def prune_networks(ctl: Controller, query: dict[str, Any]) -> dict[str, Any]:
    """``POST /networks/prune``: the unused user networks the ``filters`` (``until``, ``label``) keep."""
    f = F.parse(query.get("filters"), NETWORK_PRUNE_FILTERS)
    if not f:
        return {"NetworksDeleted": ctl.prune_networks()}
    ok = network_matcher(f)
    removed = []
    for net in ctl.networks():
        if net.predefined or ctl.endpoints(net) or not ok(net):
            continue
        try:
            ctl.delete_network(net.id)
        except Exception:  # gained an endpoint meanwhile, or went: not ours to prune any more
            continue
        removed.append(net.name)
    return {"NetworksDeleted": removed}


IMAGE_FILTERS = ("dangling", "label", "reference", "before", "since", "until")
VOLUME_FILTERS = ("name", "driver", "label", "dangling")


def _bool_filter(f: F.Filters, key: str) -> bool | None:
    vals = f.values(key)
    if not vals:
        return None
    v = vals[-1].lower()
    if v not in ("true", "false", "1", "0"):
        raise InvalidConfig(f"invalid filter '{key}={vals[-1]}'")
    return v in ("true", "1")


def images(listed: list[dict[str, Any]], query: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /images/json?filters=``: ``dangling`` (untagged), ``label``, ``reference`` (a glob
    over ``repo[:tag]``, keeping only the tags that match), ``before``/``since`` (an image), ``until``."""
    import fnmatch

    f = F.parse(query.get("filters"), IMAGE_FILTERS)
    if not f:
        return listed
    dangling = _bool_filter(f, "dangling")
    before = min((_image_created(listed, v) for v in f.values("before")), default=None)
    since = max((_image_created(listed, v) for v in f.values("since")), default=None)
    until = min((F.until_cutoff(v) for v in f.values("until")), default=None)
    out = []
    for img in listed:
        created = img.get("Created") or 0
        if (before is not None and not created < before) or (since is not None and not created > since) \
                or (until is not None and not created < until):
            continue
        tags = img.get("RepoTags") or []
        if dangling is not None and (not tags) != dangling:
            continue
        if not f.labels(img.get("Labels")):
            continue
        refs = f.values("reference")
        if refs:
            def hit(tag: str) -> bool:
                repo = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
                return any(fnmatch.fnmatchcase(tag, r) or fnmatch.fnmatchcase(repo, r) for r in refs)

            tags = [t for t in tags if hit(t)]
            if not tags:
                continue
            img = dict(img, RepoTags=tags)
        out.append(img)
    return out


def _image_created(listed: list[dict[str, Any]], ref: str) -> float:
    """The creation time of the listed image ``ref`` (``name[:tag]`` or an id prefix), for ``before``/``since``."""
    name = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
    ident = ref.removeprefix("sha256:")
    for img in listed:
        if name in (img.get("RepoTags") or []) or (len(ident) >= 3 and img["Id"].removeprefix("sha256:").startswith(ident)):
            return float(img.get("Created") or 0)
    raise NotFound(f"No such image: {ref}")


def volumes(store: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /volumes?filters=``: ``name``, ``driver``, ``label``, ``dangling`` (no container refers to it)."""
    listed = store.list()
    f = F.parse(query.get("filters"), VOLUME_FILTERS)
    if not f:
        return listed
    dangling = _bool_filter(f, "dangling")
    return [v for v in listed if f.name(v["Name"]) and f.labels(v.get("Labels")) and f.any("driver", lambda d: v["Driver"] == d)
            and (dangling is None or (not store.users(v["Name"])) == dangling)]
