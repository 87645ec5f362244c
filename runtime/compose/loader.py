"""From ``-f``/``-p`` and the directory to one interpolated compose document.

The files are found as docker-compose finds them (``-f``, else ``compose.yaml`` /
``docker-compose.yml`` and their ``.yml``/``.yaml`` twins in this directory or the
nearest parent holding one), parsed with PyYAML, merged (later files override
earlier ones key by key), and their values substituted from the environment over
the project directory's ``.env`` (read with python-dotenv). The project name is
``-p``, else ``COMPOSE_PROJECT_NAME``, else the top-level ``name:``, else the
project directory's name, normalised as docker-compose 1.29 does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from runtime.compose.errors import ComposeError
from runtime.compose.interpolate import interpolate

__all__ = ["Source", "load", "find_files", "read_yaml", "normalise_name", "DEFAULT_FILES"]

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


@dataclass
class Source:
    """What the model is built from: the merged, interpolated document and where it came from."""

    files: list[str]
    project_dir: str
    project_name: str
    env: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


def find_files(files: list[str] | None, cwd: str | None = None) -> list[str]:
    """The compose files to read: those given (``-`` is stdin), or the default one nearest ``cwd``."""
    if files:
        out = []
        for f in files:
            path = f if f == "-" else os.path.abspath(os.path.join(cwd or os.getcwd(), f))
            if path != "-" and not os.path.isfile(path):
                raise ComposeError(f"{f}: no such file")
            out.append(path)
        return out
    here = os.path.abspath(cwd or os.getcwd())
    while True:
        for name in DEFAULT_FILES:
            if os.path.isfile(os.path.join(here, name)):
                return [os.path.join(here, name)]
        parent = os.path.dirname(here)
        if parent == here:
            raise ComposeError(
                "can't find a suitable configuration file in this directory or any parent: "
                f"are you in the right directory? (supported filenames: {', '.join(DEFAULT_FILES)})"
            )
        here = parent


def read_yaml(path: str) -> dict[str, Any]:
    """One compose file as a mapping; malformed YAML is one line naming the file, line and column."""
    label = "stdin" if path == "-" else os.path.basename(path)
    try:
        if path == "-":
            import sys

            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ComposeError(f"{label}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ComposeError(f"{label}: malformed YAML{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ComposeError(f"{label}: malformed YAML: {exc}") from None
    if data is None:
        raise ComposeError(f"{label}: the file is empty")
    if not isinstance(data, dict):
        raise ComposeError(f"{label}: the top level must be a mapping, not {_kind(data)}")
    for key in data:
        if not isinstance(key, str):
            raise ComposeError(f"{label}: top-level key {key!r} is not a string")
    return data


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(value), type(value).__name__)


def merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return override


def read_env_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments, quotes, ``export``) as docker-compose reads ``.env`` and ``env_file``."""
    from dotenv import dotenv_values

    try:
        with open(path, encoding="utf-8") as f:
            values = dotenv_values(stream=f, interpolate=False)
    except OSError as exc:
        raise ComposeError(f"env file {path}: {exc.strerror}") from None
    return {k: v if v is not None else "" for k, v in values.items()}


def normalise_name(name: str) -> str:
    """docker-compose 1.29's rule: lower case, only ``[-_a-z0-9]`` kept."""
    return re.sub(r"[^-_a-z0-9]", "", name.lower())


def load(
    files: list[str] | None = None,
    project_name: str | None = None,
    project_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: str | None = None,
) -> Source:
    """Find, read, merge and interpolate the project's files."""
    environ = dict(os.environ if environ is None else environ)
    paths = find_files(files)
    first = next((p for p in paths if p != "-"), None)
    pdir = os.path.abspath(project_dir) if project_dir else os.path.dirname(first) if first else os.getcwd()
    dot = env_file or os.path.join(pdir, ".env")
    env = {**(read_env_file(dot) if os.path.isfile(dot) else {}), **environ}
    if env_file and not os.path.isfile(env_file):
        raise ComposeError(f"env file {env_file}: no such file")
    data: dict[str, Any] = {}
    for path in paths:
        data = merge(data, read_yaml(path))
    data = interpolate(data, env)
    raw_name = project_name or env.get("COMPOSE_PROJECT_NAME") or (data.get("name") if isinstance(data.get("name"), str) else None) or os.path.basename(pdir)
    name = normalise_name(raw_name)
    if not name or not name[0].isalnum():
        if project_name:
            raise ComposeError(f"invalid project name {project_name!r}: it must contain a letter or digit first and only [-_a-z0-9]")
        name = "default"
    return Source(files=paths, project_dir=pdir, project_name=name, env=env, data=data)
