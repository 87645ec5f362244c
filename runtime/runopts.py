"""Docker's run/create flags that are parsed on the client: ``-e VAR``, ``--env-file``,
``--label-file``, ``--add-host``, ``-m``, ``--cpus``, ``--mac-address``, ``--cidfile``.

The client reads what only it can see (its environment, its files) and sends the API
plain values; the engine checks the rest again (``runtime.engine.runconfig``). Every
parser raises ``ValueError`` with Docker's one line, so a click option's error reads
like the others. Nothing here imports the engine.
"""

from __future__ import annotations

import ipaddress
import os
import re

__all__ = ["env_arg", "env_file", "label_file", "labels", "add_host", "memory", "cpus", "mac_address", "claim_cidfile", "write_cidfile", "body_fields"]

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def env_arg(value: str, environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """``-e KEY=VALUE``, or ``-e KEY``: the client's own value, None if it has none (Docker
    then leaves the variable unset)."""
    key, sep, rest = value.partition("=")
    if not key or key != key.strip() or " " in key:
        raise ValueError(f"invalid environment variable: {value}")
    if sep:
        return key, rest
    env = os.environ if environ is None else environ
    return (key, env[key]) if key in env else None


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"open {path}: no such file or directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    return [line for line in (raw.lstrip() for raw in text.splitlines()) if line and not line.startswith("#")]


def env_file(path: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Docker's env-file: ``KEY=VALUE`` lines taken as written (no quotes, no expansion),
    ``KEY`` alone from the client's environment, ``#`` comments and blank lines skipped."""
    out = []
    for line in _lines(path):
        key = line.partition("=")[0]
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"variable '{key}' contains whitespaces" if key else f"invalid env file {path}: no variable name in {line!r}")
        pair = env_arg(line, environ)
        if pair is not None:
            out.append(pair)
    return out


def label_file(path: str) -> list[tuple[str, str]]:
    """``--label-file``: ``KEY=VALUE`` or ``KEY`` (empty value) lines, ``#`` comments."""
    return [labels(line) for line in _lines(path)]


def labels(value: str) -> tuple[str, str]:
    """``--label KEY=VALUE`` or ``--label KEY`` (Docker: an empty value)."""
    key, _, rest = value.partition("=")
    if not key:
        raise ValueError(f"invalid label '{value}': empty name")
    return key, rest


def add_host(value: str) -> str:
    """``--add-host NAME:IP`` (or ``NAME=IP``; IP may be ``host-gateway``) -> ``NAME:IP``."""
    sep = "=" if "=" in value else ":"
    name, _, ip = value.partition(sep)
    if not name or not ip:
        raise ValueError(f"bad format for add-host: {value!r}")
    if ip != "host-gateway":
        try:
            ip = str(ipaddress.ip_address(ip.strip("[]")))
        except ValueError:
            raise ValueError(f"invalid IP address in add-host: {ip!r}") from None
    return f"{name}:{ip}"


def memory(value: str) -> int:
    """``-m 64m``: bytes, with Docker's units (b, k, m, g, t; binary multiples)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([bkmgtBKMGT]?)[bB]?\s*", value)
    if not m:
        raise ValueError(f"invalid size: '{value}'")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < 6 * (1 << 20):
        raise ValueError("Minimum memory limit allowed is 6MB")
    return size


def cpus(value: str) -> int:
    """``--cpus 1.5`` -> Docker's ``NanoCpus``."""
    try:
        n = float(value)
    except ValueError:
        raise ValueError(f"failed to parse {value} as a rational number") from None
    if n <= 0 or n != n:
        raise ValueError(f"invalid value for --cpus: {value}: it must be positive")
    return int(round(n * 1e9))


def mac_address(value: str) -> str:
    if not _MAC.match(value):
        raise ValueError(f"{value} is not a valid mac address")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value} is a multicast address: a container needs a unicast one")
    return value.lower()


def claim_cidfile(path: str | None) -> None:
    """Docker refuses an existing ``--cidfile`` before it creates anything."""
    if path and os.path.exists(path):
        raise ValueError(f"Container ID file found, make sure the other container isn't running or delete {path}")


def write_cidfile(path: str | None, cid: str) -> None:
    """The new container's id, written once it exists (exclusively: a file made meanwhile stays)."""
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ValueError(f"Container ID file found, make sure the other container isn't running or delete {path}") from None
    except OSError as exc:
        raise ValueError(f"failed to create the container ID file: {exc.strerror}: {path}") from None
    with os.fdopen(fd, "w") as f:
        f.write(cid)


def body_fields(opts: dict) -> dict:
    """The create / run request's fields for these flags, from the CLI's option values
    (``--env-file`` under ``-e``, ``--label-file`` under ``--label``, as Docker)."""
    env: dict[str, str] = {}
    for pairs in opts.get("env_file") or ():
        env.update(pairs)
    env.update(p for p in opts.get("env") or () if p is not None)
    lab: dict[str, str] = {}
    for pairs in opts.get("label_file") or ():
        lab.update(pairs)
    lab.update(opts.get("label") or ())
    out: dict = {"Env": env, "Labels": lab, "ExtraHosts": list(opts.get("add_host") or ()),
                 "DnsSearch": list(opts.get("dns_search") or ()), "DnsOptions": list(opts.get("dns_option") or ()),
                 "Init": bool(opts.get("init"))}
    for flag, key in (("mac_address", "MacAddress"), ("stop_signal", "StopSignal"), ("stop_timeout", "StopTimeout"),
                      ("memory", "Memory"), ("cpus", "NanoCpus")):
        if opts.get(flag) is not None:
            out[key] = opts[flag]
    return out
