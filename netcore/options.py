"""Parsing drivers' ``-o KEY=VALUE`` options: Docker's long keys, short aliases, typed values.

Every driver checks its options before any kernel change; these helpers give all of
them the same rules and the same one-line errors.
"""

from __future__ import annotations

from netcore.errors import InvalidConfig

__all__ = ["canonical", "boolean", "integer", "mtu"]


def canonical(options: dict[str, str], short: dict[str, str], known: dict[str, str], driver: str) -> dict[str, str]:
    """``options`` under their long keys (``short`` maps aliases to them); an unknown key is an error."""
    out: dict[str, str] = {}
    for key, value in options.items():
        full = short.get(key, key)
        if full not in known:
            plain = sorted({*short, *known} - {k for k in {*short, *known} if k.startswith("com.docker.")})
            docker = ", or their com.docker.network.* forms" if any(k.startswith("com.docker.") for k in known) else ""
            raise InvalidConfig(f"unknown {driver} driver option {key!r} (known: {', '.join(plain)}{docker})")
        out[full] = value
    return out


def boolean(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise InvalidConfig(f"invalid value {value!r} for option {key}: expected true or false")


def integer(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidConfig(f"invalid value {value!r} for option {key}: expected an integer") from None


def mtu(value: str) -> int:
    size = integer("mtu", value)
    if not 68 <= size <= 65535:
        raise InvalidConfig(f"invalid value {size} for option mtu: must be between 68 and 65535")
    return size
