"""API routes of the image store and the volumes, in Docker's paths and shapes.

Archives travel raw in the request (``Content-Type: application/x-tar``) or the
answer (a ``Stream``): ``load`` and ``import`` unpack while the client sends.
A reference may hold ``/`` and ``:``; the client quotes it, the route unquotes.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from netcore import InvalidConfig

from runtime.api.server import RAW, Router, Stream
from runtime.engine.images import ImageStore
from runtime.engine import listing
from runtime.engine.streams import ArchiveError, Prefetcher
from runtime.engine.volumes import Volumes

__all__ = ["add_routes"]

log = logging.getLogger("netcore.images")


def _body_stream(body: Any) -> Any:
    if body is None or not hasattr(body, "read"):
        raise InvalidConfig("the request carries no archive (Content-Type: application/x-tar)")
    return body


def _prefetched(fn: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(archive, ...)`` with the archive read ahead while it is unpacked."""
    src = Prefetcher(_body_stream(body))
    try:
        return fn(src, *args, **kwargs)
    finally:
        src.close()


def _reading(fn: Any) -> Any:
    """A handler that reads an archive: on failure the rest of it is read (and dropped) before
    the error goes back, so the client, still sending, gets the answer and not a reset."""

    def handler(body: Any = None, **kwargs: Any) -> Any:
        try:
            return fn(body=body, **kwargs)
        except Exception:
            if body is not None and hasattr(body, "read"):
                try:
                    while body.read(1 << 20):
                        pass
                except OSError:
                    pass
            raise

    return handler


def add_routes(r: Router, images: ImageStore, volumes: Volumes, events: Any = None) -> None:
    """``events()``: the engine's bus (``runtime.engine.events``), where image and volume events go."""
    def publish(kind: str, action: str, actor: str, **attrs: Any) -> None:
        if events is not None:
            events().publish(kind, action, actor, **attrs)

    def loaded(names: list[str]) -> list[str]:
        for n in names:
            publish("image", "load", n, name=n)
        return names

    def imported(answer: dict[str, Any]) -> dict[str, Any]:
        publish("image", "import", answer["Id"], name=answer["Id"])
        return answer

    def removed(ref: str, out: list[dict[str, str]]) -> list[dict[str, str]]:
        deleted = [line["Deleted"] for line in out if "Deleted" in line][:1]  # the image; its layers follow
        for line in out:
            if "Untagged" in line:
                publish("image", "untag", line["Untagged"], name=ref)
        for image_id in deleted:
            publish("image", "delete", image_id, name=ref)
        return out

    r.add("GET", "/images/json", lambda query, **_: listing.images(images.list(), query))
    r.add("POST", "/images/load", _reading(lambda body, **_: {"Loaded": loaded(_prefetched(images.load, body))}), body=RAW)
    r.add("POST", "/images/create", _reading(lambda body, query, **_: imported(_import(images, body, query))), body=RAW)
    r.add("GET", "/images/get", lambda query, **_: _save(images, query))
    r.add("GET", r"/images/(?P<ref>.+)/json", lambda ref, **_: images.inspect(unquote(ref)))
    r.add("POST", r"/images/(?P<ref>.+)/tag",
          lambda ref, query, **_: publish("image", "tag", unquote(ref), name=_tag(images, unquote(ref), query)))
    r.add("DELETE", r"/images/(?P<ref>.+)",
          lambda ref, query, **_: removed(unquote(ref), images.remove(unquote(ref), force=query.get("force") == "1")))

    r.add("GET", "/volumes", lambda query, **_: {"Volumes": listing.volumes(volumes, query), "Warnings": None})
    r.add("POST", "/volumes/create", lambda body, **_: _volume_event(publish, "create", _create_volume(volumes, body or {})))
    r.add("POST", "/volumes/prune", lambda query, **_: _prune(volumes, query))
    r.add("GET", r"/volumes/(?P<name>[^/]+)", lambda name, **_: volumes.view(unquote(name)))
    r.add("DELETE", r"/volumes/(?P<name>[^/]+)",
          lambda name, query, **_: publish("volume", "destroy", unquote(name), driver="local")
          if volumes.remove(unquote(name), force=query.get("force") == "1") is None else None)


def _volume_event(publish: Any, action: str, view: dict[str, Any]) -> dict[str, Any]:
    publish("volume", action, view["Name"], driver=view.get("Driver") or "local")
    return view


def _import(images: ImageStore, body: Any, query: dict[str, str]) -> dict[str, Any]:
    """Docker's ``POST /images/create?fromSrc=-&repo=NAME&tag=TAG`` (import; there is no registry to pull from)."""
    if query.get("fromSrc") != "-":
        raise InvalidConfig("only import is supported here (fromSrc=-): there is no registry to pull from")
    repo, tag = query.get("repo") or "", query.get("tag") or ""
    ref = f"{repo}:{tag}" if repo and tag else repo or None
    return {"Id": _prefetched(images.import_rootfs, body, ref, message=query.get("message") or "")}


def _save(images: ImageStore, query: dict[str, str]) -> Stream:
    names = [n for n in (query.get("names") or "").split(",") if n]
    if not names:
        raise InvalidConfig('"netcore save" requires at least 1 argument')
    _, chunks = images.save(names)

    def logged() -> Any:
        try:
            yield from chunks
        except ArchiveError as exc:  # too late for an error answer: end with a block that is not
            log.error("save %s: %s", ",".join(names), exc)  # the end of an archive, which the CLI reports
            yield b"\xff" * 512

    return Stream(logged())


def _tag(images: ImageStore, ref: str, query: dict[str, str]) -> str:
    """Tag ``ref``; the new name (the route answers 204)."""
    repo, tag = query.get("repo") or "", query.get("tag") or ""
    target = f"{repo}:{tag}" if tag else repo
    images.tag(ref, target)
    return target


def _create_volume(volumes: Volumes, body: dict[str, Any]) -> dict[str, Any]:
    return volumes.create(body.get("Name") or None, labels=body.get("Labels") or {}, driver=body.get("Driver") or "local",
                          options=body.get("DriverOpts") or {})


def _prune(volumes: Volumes, query: dict[str, str]) -> dict[str, Any]:
    removed, space = volumes.prune(all=query.get("all") == "1")
    return {"VolumesDeleted": removed, "SpaceReclaimed": space}
