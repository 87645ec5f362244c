"""``-v``, ``--mount`` and ``--tmpfs`` in Docker's notation, parsed into the API's ``Mounts`` entries.

Shared by the CLI (and compose): the engine gets Docker's ``Mount`` objects (``Type``,
``Source``, ``Target``, ``ReadOnly``, ``TmpfsOptions``) and checks paths itself, so a bad
host path is refused there with one line whoever sent it.
"""

from __future__ import annotations

__all__ = ["MountSpecError", "parse_volume", "parse_mount", "parse_tmpfs", "parse_size"]


class MountSpecError(ValueError):
    """A malformed mount option (one line, for the user)."""


def parse_size(text: str) -> int:
    """``64m``, ``1g``, ``4096``: bytes (Docker's RAMInBytes units, k/m/g/t, optional ``b``)."""
    t = text.strip().lower().removesuffix("b")
    mult = 1
    if t and t[-1] in "kmgt":
        mult = 1024 ** ("kmgt".index(t[-1]) + 1)
        t = t[:-1]
    try:
        n = float(t)
    except ValueError:
        raise MountSpecError(f"invalid size: '{text}'") from None
    if n < 0:
        raise MountSpecError(f"invalid size: '{text}'")
    return int(n * mult)


def parse_volume(spec: str) -> dict:
    """``-v [SRC:]DST[:ro|rw]``: an absolute SRC is a bind mount, a name a named volume, no
    SRC an anonymous volume. A relative SRC goes to the engine as a bind and is refused there."""
    parts = spec.split(":")
    if not spec or len(parts) > 3 or any(not p for p in parts):
        raise MountSpecError(f"invalid volume specification: '{spec}'")
    mode = ""
    if len(parts) == 3 or (len(parts) == 2 and not parts[1].startswith("/") and parts[0].startswith("/")):
        mode = parts.pop()
    ro = False
    for opt in mode.split(",") if mode else ():
        if opt in ("ro", "rw"):
            ro = opt == "ro"
        elif opt not in ("z", "Z", "rprivate", "private", "nocopy"):
            raise MountSpecError(f"invalid mode: {opt}")
    if len(parts) == 1:
        return {"Type": "volume", "Source": "", "Target": parts[0], "ReadOnly": ro}
    src, dst = parts
    kind = "bind" if "/" in src or src.startswith(".") else "volume"
    return {"Type": kind, "Source": src, "Target": dst, "ReadOnly": ro}


def parse_mount(spec: str) -> dict:
    """``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..][,tmpfs-mode=..]``."""
    out: dict = {"Type": "volume", "Source": "", "Target": "", "ReadOnly": False}
    tmpfs: dict = {}
    for field in spec.split(","):
        key, sep, val = field.partition("=")
        key = key.strip().lower()
        if key in ("readonly", "ro"):
            if sep and val.lower() not in ("1", "true", "0", "false"):
                raise MountSpecError(f"invalid value for {key}: {val}")
            out["ReadOnly"] = not sep or val.lower() in ("1", "true")
            continue
        if not sep:
            raise MountSpecError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            if val not in ("bind", "volume", "tmpfs"):
                raise MountSpecError(f"invalid mount type {val!r}: bind, volume or tmpfs")
            out["Type"] = val
        elif key in ("source", "src"):
            out["Source"] = val
        elif key in ("target", "destination", "dst"):
            out["Target"] = val
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = parse_size(val)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError:
                raise MountSpecError(f"invalid tmpfs-mode: {val}") from None
        elif key in ("bind-propagation", "consistency", "volume-nocopy"):
            continue
        else:
            raise MountSpecError(f"unexpected key '{key}' in '{field}'")
    if not out["Target"]:
        raise MountSpecError("target is required")
    if out["Type"] == "bind" and not out["Source"]:
        raise MountSpecError("source is required when specifying bind mount")
    if out["Type"] == "tmpfs" and out["Source"]:
        raise MountSpecError("source must not be specified for a tmpfs mount")
    if tmpfs:
        if out["Type"] != "tmpfs":
            raise MountSpecError(f"cannot mix 'tmpfs-*' options with mount type '{out['Type']}'")
        out["TmpfsOptions"] = tmpfs
    return out


def parse_tmpfs(spec: str) -> dict:
    """``--tmpfs /path[:size=64m,mode=1777,ro]``."""
    path, _, opts = spec.partition(":")
    if not path.startswith("/"):
        raise MountSpecError(f"invalid tmpfs path: '{path}' mount path must be absolute")
    out: dict = {"Type": "tmpfs", "Source": "", "Target": path, "ReadOnly": False}
    tmpfs: dict = {}
    for opt in filter(None, opts.split(",")):
        key, _, val = opt.partition("=")
        if key in ("ro", "rw"):
            out["ReadOnly"] = key == "ro"
        elif key == "size":
            tmpfs["SizeBytes"] = parse_size(val)
        elif key == "mode":
            try:
                tmpfs["Mode"] = int(val, 8)
            except ValueError:
                raise MountSpecError(f"invalid tmpfs mode: {val}") from None
        elif key in ("nosuid", "nodev"):
            continue  # always so
        else:
            raise MountSpecError(f"unsupported tmpfs option: {opt} (supported: rw, ro, size, mode, nosuid, nodev)")
    if tmpfs:
        out["TmpfsOptions"] = tmpfs
    return out
