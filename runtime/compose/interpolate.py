"""Variable substitution in compose files, as docker-compose does it.

``$VAR`` and ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset),
``${VAR:?err}`` / ``${VAR?err}`` (required), ``${VAR:+alt}`` / ``${VAR+alt}`` and ``$$`` for
a literal ``$``. A default may itself hold variables (``${A:-${B}}``). Substitution runs
on the values of the parsed file, never on keys, before the file is validated, so a
value that comes out wrong is reported like one written wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runtime.compose.errors import ComposeError

__all__ = ["interpolate", "substitute"]

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


def _braced(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` that opens at ``start`` (nested ``${...}`` allowed)."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def substitute(text: str, env: Mapping[str, str], where: str) -> str:
    """``text`` with its variables replaced from ``env``; ``where`` names the value in errors."""
    out: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        nxt = text[j + 1: j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _braced(text, j)
            if end < 0:
                raise ComposeError(f'{where}: invalid interpolation format "{text}": no closing "}}"')
            out.append(_expand(text[j + 2: end], env, where, text))
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if not m:
                raise ComposeError(f'{where}: invalid interpolation format "{text}": use "$$" for a literal "$"')
            out.append(env.get(m.group(), ""))
            i = m.end()


def _expand(body: str, env: Mapping[str, str], where: str, text: str) -> str:
    m = _NAME.match(body)
    if not m:
        raise ComposeError(f'{where}: invalid interpolation format "{text}"')
    name, rest = m.group(), body[m.end():]
    if not rest:
        return env.get(name, "")
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise ComposeError(f'{where}: invalid interpolation format "{text}"')
    arg = rest[len(op):]
    value = env.get(name)
    present = value is not None and (value != "" or ":" not in op)
    if op in (":-", "-"):
        return value if present else substitute(arg, env, where)  # type: ignore[return-value]
    if op in (":+", "+"):
        return substitute(arg, env, where) if present else ""
    if not present:  # ":?" / "?"
        reason = substitute(arg, env, where) or "is missing a value"
        raise ComposeError(f"{where}: required variable {name} is missing a value: {reason}")
    return value  # type: ignore[return-value]


def interpolate(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """A copy of the parsed file with every string value substituted; keys stay as written."""
    if isinstance(node, str):
        return substitute(node, env, path or "value") if "$" in node else node
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    return node
