"""Container operations besides the lifecycle: pause, unpause, rename, prune.

They work on the records of ``Containers`` under its lock, and publish their events on
its bus. Docker's rules and error texts.
"""

from __future__ import annotations

from typing import Any

from netcore import Conflict, InvalidConfig, names

from runtime.engine import freeze

__all__ = ["pause", "unpause", "rename", "prune", "thaw_for_signal"]

CONTAINER = "container"


def _running(ctr: Any, ref: str) -> dict[str, Any]:
    rec = ctr.get(ref)
    if rec["state"] == "restarting":
        raise Conflict(f"Container {rec['id']} is restarting, wait until the container is running")
    if rec["state"] != "running":
        raise Conflict(f"Container {rec['id']} is not running")
    return rec


def pause(ctr: Any, ref: str) -> dict[str, Any]:
    with ctr.lock:
        rec = _running(ctr, ref)
        if rec.get("paused"):
            raise Conflict(f"Container {rec['id']} is already paused")
        try:
            how = freeze.freeze(rec["process"]["pid"])
        except freeze.FreezeError as exc:
            raise Conflict(f"Cannot pause container {rec['id']}: {exc}") from None
        rec.update(paused=True, paused_by=how)
        ctr.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
        ctr.changed.notify_all()
    ctr.events.publish("container", "pause", rec["id"], **_attrs(rec))
    return rec


def unpause(ctr: Any, ref: str) -> dict[str, Any]:
    with ctr.lock:
        rec = _running(ctr, ref) if ctr.get(ref).get("paused") else None
        if rec is None:
            raise Conflict(f"Container {ctr.get(ref)['id']} is not paused")
        freeze.thaw(rec["process"]["pid"])
        rec["paused"] = False
        ctr.store.put(CONTAINER, rec["id"], rec, name=rec["name"])
        ctr.changed.notify_all()
    ctr.events.publish("container", "unpause", rec["id"], **_attrs(rec))
    return rec


def thaw_for_signal(rec: dict[str, Any]) -> None:
    """stop/kill/rm of a paused container: let its processes go so the signal lands (lock held;
    the caller stores the record)."""
    if rec.get("paused") and rec["state"] == "running" and rec.get("process"):
        freeze.thaw(rec["process"]["pid"])
    rec["paused"] = False


def rename(ctr: Any, ref: str, new: str) -> dict[str, Any]:
    """Docker's ``rename``: a new unique name; the old one is free at once."""
    if not new:
        raise InvalidConfig("Neither old nor new names may be empty")
    new = new.lstrip("/")
    if not names.valid_object_name(new):
        raise InvalidConfig(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    with ctr.lock:
        rec = ctr.get(ref)
        old = rec["name"]
        if new == old:
            raise Conflict("Renaming a container with the same name as its current name")
        other = ctr.store.find(CONTAINER, new)
        if other is not None:
            raise Conflict(f'Error when allocating new name: Conflict. The container name "/{new}" is already in use by container "{other["id"]}". '
                           "You have to remove (or rename) that container to be able to reuse that name.")
        rec["name"] = new  # the hostname stays, as in Docker
        ctr.store.put(CONTAINER, rec["id"], rec, name=new)
        ctr.changed.notify_all()
    ctr.events.publish("container", "rename", rec["id"], **{**_attrs(rec), "oldName": "/" + old})
    return rec


def prune(ctr: Any, keep: Any = None) -> tuple[list[str], int]:
    """Remove every stopped container (``keep(rec)`` true: spared; the filters' hook);
    returns their ids and the bytes their writable layers held."""
    from runtime.engine.listing import dir_size  # sizes only when pruning

    removed, space = [], 0
    for rec in ctr.list(all=True):
        if rec["state"] in ("running", "restarting", "removing") or (keep is not None and keep(rec)):
            continue
        size = dir_size(ctr.state_dir(rec["id"]) + "/upper")
        try:
            ctr.remove(rec["id"])
        except Conflict:  # started meanwhile
            continue
        removed.append(rec["id"])
        space += size
    return removed, space


def _attrs(rec: dict[str, Any]) -> dict[str, Any]:
    return {**(rec.get("labels") or {}), "image": rec.get("image") or "host", "name": rec["name"]}
