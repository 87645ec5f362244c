"""Image references (``NAME[:TAG]``) in Docker's grammar, and their familiar form.

``docker.io/library/busybox:latest`` and ``busybox`` name the same image; the store
keeps the short ("familiar") form that ``docker images`` shows.
"""

from __future__ import annotations

import re

from netcore import InvalidConfig

__all__ = ["parse", "normalize", "is_id_like", "DEFAULT_TAG"]

DEFAULT_TAG = "latest"
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_RE = re.compile(_DOMAIN)
_COMPONENT_RE = re.compile(_COMPONENT)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_HEX64 = re.compile(r"[a-f0-9]{64}")


def _split(ref: str) -> tuple[str, str | None]:
    """``NAME[:TAG]`` -> (NAME, TAG or None); a ``:`` before the last ``/`` is a registry port."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, None


def parse(ref: str) -> tuple[str, str]:
    """(repository, tag) of a reference, familiar form; one clear line if it is not valid."""
    if not ref or "@" in ref or ref != ref.strip():
        raise InvalidConfig(f"invalid reference format: {ref!r}")
    name, tag = _split(ref)
    if tag is not None and not _TAG_RE.fullmatch(tag):
        raise InvalidConfig(f"invalid reference format: {ref!r}")
    parts = name.split("/")
    first = parts[0]
    has_domain = len(parts) > 1 and ("." in first or ":" in first or first == "localhost" or first.lower() != first)
    if has_domain and not _DOMAIN_RE.fullmatch(first):
        raise InvalidConfig(f"invalid reference format: {ref!r}")
    path = parts[1:] if has_domain else parts
    for component in path:
        if not _COMPONENT_RE.fullmatch(component):
            if component.lower() != component and _COMPONENT_RE.fullmatch(component.lower()):
                raise InvalidConfig(f"invalid reference format: repository name ({name}) must be lowercase")
            raise InvalidConfig(f"invalid reference format: {ref!r}")
    if len(name) > 255:
        raise InvalidConfig("invalid reference format: repository name must not be more than 255 characters")
    if _HEX64.fullmatch(name):
        raise InvalidConfig(f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/") :]
    return name, tag or DEFAULT_TAG


def normalize(ref: str) -> str:
    """``NAME[:TAG]`` -> ``name:tag`` (familiar form, default tag ``latest``)."""
    name, tag = parse(ref)
    return f"{name}:{tag}"


def is_id_like(ref: str) -> bool:
    """``sha256:<hex>`` or a bare hex string: could be an image id or a prefix of one."""
    body = ref[len("sha256:") :] if ref.startswith("sha256:") else ref
    return bool(body) and len(body) <= 64 and all(c in "0123456789abcdef" for c in body)
