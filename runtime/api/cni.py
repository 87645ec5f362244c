"""The API route behind ``netcore-cni``: ``POST /cni/<command>``.

The executable is a forwarder (``runtime/cni/netcore-cni.c``): it sends the ``CNI_*``
environment and its stdin as ``{"env": {...}, "config": "..."}`` and prints the answer's
body, exiting 0 on a 2xx. ``runtime.cni.protocol`` judges the request and shapes the
answer; a CNI error goes out as the body of a 400 (CNI's error object, not ``{"message"}``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictStr

from runtime.api.server import Answer, Router
from runtime.api.schemas import Body
from runtime.cni import protocol
from runtime.engine.cni import CniAttachments

__all__ = ["add_routes"]


class CniCall(Body):
    env: dict[StrictStr, StrictStr] = {}
    config: Annotated[StrictStr, Field(max_length=1 << 20)] = ""


def add_routes(r: Router, cni: CniAttachments) -> None:
    def call(body: dict[str, Any], **_: Any) -> Answer:
        code, out = protocol.handle(body["env"], body["config"], cni)
        return Answer(400 if code else 200 if out is not None else 204, out)

    r.add("POST", "/cni/[a-z]+", call, body=CniCall, max_body=2 << 20)
