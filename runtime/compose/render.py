"""``compose config``: the project as the engine will see it, printed back as YAML.

Variables are substituted, ``env_file`` is folded into ``environment``, build contexts
and bind-mount sources are absolute, every service lists its networks: what
docker-compose's ``config`` shows, so a user can check what a file means.
"""

from __future__ import annotations

from typing import Any

import yaml

from runtime.compose.model import Project, Service

__all__ = ["config_dict", "config_yaml"]


def _volume(m: Any) -> str:
    spec = f"{m.source}:{m.target}" if m.source else m.target
    return spec + (":ro" if m.read_only else "")


def _service(svc: Service) -> dict[str, Any]:
    out = {k: v for k, v in svc.raw.items() if k != "env_file"}
    if svc.environment or "env_file" in svc.raw:
        out["environment"] = dict(svc.environment)
    if svc.build is not None:
        build: dict[str, Any] = {"context": svc.build.context, "dockerfile": svc.build.dockerfile}
        if svc.build.args:
            build["args"] = dict(svc.build.args)
        if svc.build.target:
            build["target"] = svc.build.target
        out["build"] = build
    if svc.volumes:
        out["volumes"] = [_volume(m) for m in svc.volumes]
    nets: dict[str, Any] = {}
    for key, sn in svc.networks.items():
        cfg: dict[str, Any] = {}
        if sn.aliases:
            cfg["aliases"] = list(sn.aliases)
        if sn.ipv4_address:
            cfg["ipv4_address"] = sn.ipv4_address
        nets[key] = cfg or None
    out["networks"] = nets
    if svc.depends_on:
        out["depends_on"] = {dep: {"condition": cond} for dep, cond in svc.depends_on.items()}
    return out


def config_dict(project: Project, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw``: the interpolated document, for the top-level sections as written."""
    out: dict[str, Any] = {}
    if project.version:
        out["version"] = project.version
    out["name"] = project.name
    out["services"] = {name: _service(svc) for name, svc in sorted(project.services.items())}
    used = {k for s in project.services.values() for k in s.networks}
    nets = {k: v for k, v in (raw.get("networks") or {}).items()}
    if "default" in used and "default" not in nets:
        nets["default"] = None
    if nets:
        out["networks"] = nets
    if raw.get("volumes"):
        out["volumes"] = raw["volumes"]
    return out


def config_yaml(project: Project, raw: dict[str, Any]) -> str:
    return yaml.safe_dump(config_dict(project, raw), sort_keys=True, default_flow_style=False, allow_unicode=True)
