"""API routes of the engine's facts and of the container operations besides the lifecycle,
in Docker's paths and shapes: info, version, system/df, the prunes, events, top, stats,
pause/unpause, rename, archive (cp) and changes (diff).
"""

from __future__ import annotations

import json
import time
from typing import Any

from netcore import Conflict, InvalidConfig

from runtime import filters as F
from runtime.api.server import RAW, Router, Stream
from runtime.engine import copy, diff, listing, manage, stats, system

__all__ = ["add_routes", "parse_time", "EVENT_FILTERS"]


EVENT_FILTERS = ("container", "network", "volume", "image", "type", "event", "label", "scope")


def parse_time(value: str | None, now: float | None = None) -> float | None:
    """Docker's ``--since``/``--until`` (``runtime.filters.until_cutoff``: Unix time, RFC 3339,
    or a duration back from now); None when not given."""
    return None if value in (None, "") else F.until_cutoff(value, now)


def _flag(query: dict[str, str], key: str, default: bool = False) -> bool:
    value = query.get(key)
    return default if value is None else value.lower() in ("1", "true", "yes")


def add_routes(r: Router, engine: Any) -> None:
    """The routes on ``engine`` (read at each call: the table can be built before the engine is)."""
    def ctr() -> Any:
        return engine.containers

    r.add("GET", "/info", lambda **_: system.info(engine))
    r.add("GET", "/version", lambda **_: system.version())
    r.add("GET", "/system/df", lambda **_: system.disk_usage(engine))
    r.add("POST", "/containers/prune", lambda query, **_: _prune_containers(ctr(), query))
    r.add("POST", "/images/prune", lambda query, **_: _prune_images(engine, query))
    r.add("POST", "/build/prune", lambda **_: dict(zip(("CachesDeleted", "SpaceReclaimed"), system.prune_build_cache(engine))))
    r.add("GET", "/events", lambda query, **_: _events(ctr().events, query))
    r.add("GET", r"/containers/(?P<ref>[^/]+)/top", lambda ref, query, **_: _top(ctr(), ref, query))
    r.add("GET", r"/containers/(?P<ref>[^/]+)/stats", lambda ref, query, **_: _stats(ctr(), ref, query))
    r.add("POST", r"/containers/(?P<ref>[^/]+)/pause", lambda ref, **_: manage.pause(ctr(), ref) and None)
    r.add("POST", r"/containers/(?P<ref>[^/]+)/unpause", lambda ref, **_: manage.unpause(ctr(), ref) and None)
    r.add("POST", r"/containers/(?P<ref>[^/]+)/rename", lambda ref, query, **_: manage.rename(ctr(), ref, query.get("name", "")) and None)
    r.add("GET", r"/containers/(?P<ref>[^/]+)/archive",
          lambda ref, query, **_: Stream(copy.get_archive(ctr(), ref, _path(query), follow=_flag(query, "follow"))))
    r.add("PUT", r"/containers/(?P<ref>[^/]+)/archive",
          lambda ref, query, body, **_: copy.put_archive(ctr(), ref, _path(query), body, keep_owner=_flag(query, "copyUIDGID"),
                                                         raw=_flag(query, "raw")), body=RAW)
    r.add("GET", r"/containers/(?P<ref>[^/]+)/changes", lambda ref, **_: _changes(ctr(), ref))


def _path(query: dict[str, str]) -> str:
    path = query.get("path") or ""
    if not path:
        raise InvalidConfig("path is required: GET /containers/ID/archive?path=/PATH")
    return path


def _prune_containers(ctr: Any, query: dict[str, str]) -> dict[str, Any]:
    """``until`` and ``label``/``label!`` as Docker's prune (``listing.prune_matcher``)."""
    match = listing.prune_matcher(ctr.controller, ctr, query.get("filters"))
    removed, space = manage.prune(ctr, None if match is None else (lambda rec: not match(rec)))
    return {"ContainersDeleted": removed, "SpaceReclaimed": space}


def _prune_images(engine: Any, query: dict[str, str]) -> dict[str, Any]:
    filters = F.parse(query.get("filters"), ("dangling",))
    every = "false" in [v.lower() for v in filters.values("dangling")] or _flag(query, "all")
    deleted, space = (system.prune_all_images if every else system.prune_images)(engine)
    return {"ImagesDeleted": deleted, "SpaceReclaimed": space}


def _events(bus: Any, query: dict[str, str]) -> Stream:
    since, until = parse_time(query.get("since")), parse_time(query.get("until"))
    return Stream(bus.stream(since=since, until=until, filters=F.parse(query.get("filters"), EVENT_FILTERS)))


def _running_pid(ctr: Any, ref: str) -> tuple[dict[str, Any], int]:
    rec = ctr.get(ref)
    if rec["state"] != "running" or not rec.get("process"):
        raise Conflict(f"Container {rec['id']} is not running")
    return rec, rec["process"]["pid"]


def _top(ctr: Any, ref: str, query: dict[str, str]) -> dict[str, Any]:
    _, pid = _running_pid(ctr, ref)
    try:
        return stats.top(pid, query.get("ps_args", ""))
    except stats.TopError as exc:
        raise InvalidConfig(str(exc)) from None


def _stats(ctr: Any, ref: str, query: dict[str, str]) -> Any:
    rec = ctr.get(ref)

    def pid() -> int | None:
        cur = ctr.store.get("container", rec["id"])
        return cur["process"]["pid"] if cur and cur["state"] == "running" and cur.get("process") else None

    first = stats.sample(rec["id"], rec["name"], pid())
    if not _flag(query, "stream", True):
        if not _flag(query, "one-shot"):
            time.sleep(0.5)  # a second sample: CPU % is the change between the two
            first = stats.sample(rec["id"], rec["name"], pid(), first)
        return first

    def stream() -> Any:
        last = first
        while True:
            time.sleep(1.0)
            if ctr.store.get("container", rec["id"]) is None:
                return
            last = stats.sample(rec["id"], rec["name"], pid(), last)
            yield json.dumps(last).encode() + b"\n"

    return Stream(stream())


def _changes(ctr: Any, ref: str) -> list[dict[str, Any]]:
    rec = ctr.get(ref)
    img = ctr._image(rec)
    if img.is_host:
        return []
    from runtime.engine.process import upper_dirs

    mounts = tuple(m["Destination"] for m in rec.get("mounts") or ())
    return diff.changes(upper_dirs(ctr.state_dir(rec["id"]))[0], tuple(img.layers), mounts)
