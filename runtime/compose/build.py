"""Building a service's image with the engine's builder (``POST /build``, Docker's protocol).

The context is packed as ``netcore build`` packs it (runtime.build.context: ``.dockerignore``
applied), sent with the Dockerfile's name, build args and the tag; the engine's JSON
progress lines are printed as they come (``stream``), and an ``error`` line ends the
build with that message. The image is named as docker-compose names it: the service's
``image``, else ``<project>_<service>``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from runtime.api.client import ApiError, Client
from runtime.compose.errors import ComposeError
from runtime.compose.model import Build

__all__ = ["build_image"]


def build_image(client: Client, service: str, spec: Build, tag: str, out: Any = None) -> str:
    """Build ``spec`` as ``tag``; the image id. Progress goes to ``out`` (stderr)."""
    from runtime.build.context import ContextError, pack_for_build

    out = out or sys.stderr
    root = os.path.realpath(spec.context)
    if not os.path.isdir(root):
        raise ComposeError(f"service {service}: build context {spec.context} is not a directory")
    path = os.path.realpath(os.path.join(root, spec.dockerfile))
    if not os.path.isfile(path):
        raise ComposeError(f"service {service}: cannot find the Dockerfile {spec.dockerfile} in {spec.context}")
    try:
        data, name = pack_for_build(root, path)
    except (ContextError, OSError) as exc:
        raise ComposeError(f"service {service}: unable to prepare the build context: {exc}") from None
    query: dict[str, str] = {"dockerfile": name, "t": tag}
    if spec.args:
        query["buildargs"] = json.dumps(spec.args)
    if spec.target:
        query["target"] = spec.target
    if spec.labels:
        query["labels"] = json.dumps(spec.labels)
    image_id = None
    try:
        for msg in client.json_lines("/build", query, method="POST", raw=data, content_type="application/x-tar"):
            if "error" in msg:
                raise ComposeError(f"service {service}: build failed: {msg['error'].strip()}")
            if "stream" in msg:
                out.write(msg["stream"])
                out.flush()
            if "aux" in msg:
                image_id = msg["aux"].get("ID")
    except ApiError as exc:
        raise ComposeError(f"service {service}: build failed: {exc}") from None
    if image_id is None:
        raise ComposeError(f"service {service}: the engine ended the build without a result")
    return image_id
