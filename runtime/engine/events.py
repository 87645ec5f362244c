"""The engine's event bus: what ``netcore events`` streams (Docker's ``/events``).

Container and network operations publish one event each where they happen
(``publish("container", "start", id, name=..., image=...)``); the bus keeps the last
``KEEP`` events for ``--since`` and wakes every subscriber. An event is Docker's JSON
message: ``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes``, ``scope``, ``time``,
``timeNano`` (and the legacy ``status``/``id``/``from`` of container events).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = ["EventBus", "matches", "KEEP"]

KEEP = 1024  # events kept for ``--since``
HEARTBEAT = 2.0  # seconds between the blank lines of an idle stream: a client that left is noticed


class EventBus:
    """Publish events; ``stream`` yields the kept ones since a time, then new ones as they come."""

    def __init__(self, keep: int = KEEP) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0  # events published so far: a subscriber's position
        self._cond = threading.Condition()

    def publish(self, type_: str, action: str, actor_id: str, **attributes: Any) -> dict[str, Any]:
        """Record one event and wake the subscribers; never raises for a bad attribute."""
        now = time.time_ns()
        event: dict[str, Any] = {
            "Type": type_,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": {k: str(v) for k, v in attributes.items() if v is not None}},
            "scope": "local",
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        if type_ == "container":  # Docker's legacy fields
            event.update(status=action, id=actor_id, **({"from": attributes["image"]} if attributes.get("image") else {}))
        with self._cond:
            self._events.append(event)
            self._seq += 1
            self._cond.notify_all()
        return event

    def recent(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._events)

    def stream(self, since: float | None = None, until: float | None = None,
               filters: dict[str, list[str]] | None = None, follow: bool = True) -> Iterator[bytes]:
        """JSON lines: the kept events at or after ``since`` (none without it, as Docker), then
        new ones until ``until`` (forever without it; blank lines while idle). ``follow`` false:
        only the kept events (``--until`` in the past)."""
        with self._cond:
            kept, seq = list(self._events), self._seq
        if since is not None:
            for ev in kept:
                if ev["timeNano"] >= since * 1e9 and (until is None or ev["timeNano"] <= until * 1e9) and matches(ev, filters):
                    yield json.dumps(ev).encode() + b"\n"
        if not follow or (until is not None and until <= time.time()):
            return
        while True:
            with self._cond:
                while self._seq == seq:
                    left = HEARTBEAT if until is None else min(HEARTBEAT, until - time.time())
                    if left <= 0:
                        return
                    if not self._cond.wait(left):
                        break
                fresh = min(self._seq - seq, len(self._events))
                new = list(self._events)[len(self._events) - fresh:] if fresh else []
                seq = self._seq
            if not new:
                if until is not None and time.time() >= until:
                    return
                yield b"\n"  # heartbeat: a write to a client that left ends this stream
                continue
            for ev in new:
                if until is not None and ev["timeNano"] > until * 1e9:
                    return
                if matches(ev, filters):
                    yield json.dumps(ev).encode() + b"\n"


def matches(event: dict[str, Any], filters: dict[str, list[str]] | None) -> bool:
    """Docker's ``--filter`` for events: values of one key OR, keys AND (container, network,
    type, event, label, image, scope)."""
    if not filters:
        return True
    attrs = event["Actor"]["Attributes"]
    for key, values in filters.items():
        if not values:
            continue
        if key in ("container", "network", "volume", "image"):
            if key == "image":  # a container's image, or an image event's own
                hit = attrs.get("image") in values or (event["Type"] == "image" and (
                    event["Actor"]["ID"] in values or attrs.get("name") in values))
            else:
                hit = event["Type"] == key and any(event["Actor"]["ID"].startswith(v) or attrs.get("name") == v for v in values)
                if key == "container" and not hit:  # a network event names the container it joined
                    hit = any(attrs.get("container", "").startswith(v) for v in values if v)
        elif key == "type":
            hit = event["Type"] in values
        elif key == "event":
            hit = event["Action"] in values or event["Action"].split(":")[0] in values
        elif key == "label":
            hit = any(attrs.get(v.partition("=")[0]) == v.partition("=")[2] if "=" in v else v in attrs for v in values)
        elif key == "scope":
            hit = event["scope"] in values
        else:
            hit = False
        if not hit:
            return False
    return True
