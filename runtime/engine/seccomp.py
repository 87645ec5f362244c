"""Docker's default seccomp profile, compiled to the BPF program bwrap loads (``--seccomp FD``).

The profile is the one Debian ships for Podman and Buildah (containers-common,
``/usr/share/containers/seccomp.json``): Docker's default in its JSON form, with rules
that apply only with some capabilities or on some architectures. They are resolved as
dockerd resolves them for runc (moby's ``profiles/seccomp``): a rule with
``includes.caps`` applies when the container has all of them, one with
``excludes.caps`` when it has none of them. libseccomp (through ``pyseccomp``) compiles
the result; a program is made once per capability set and kept by the caller.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterable

__all__ = ["PROFILE", "SeccompError", "compile_profile", "load_profile"]

PROFILE = "/usr/share/containers/seccomp.json"

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "ppc64le": "ppc64le"}.get(platform.machine(), platform.machine())
_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


class SeccompError(RuntimeError):
    """The profile is missing, malformed, or libseccomp refused it."""


def load_profile(path: str = PROFILE) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise SeccompError(f"seccomp profile {path}: {exc}") from None


def _kernel() -> tuple[int, ...]:
    return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2] if x.isdigit())


def _applies(rule: dict, caps: frozenset[str]) -> bool:
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("arches") and _ARCH not in inc["arches"]:
        return False
    if exc.get("arches") and _ARCH in exc["arches"]:
        return False
    if any(c not in caps for c in inc.get("caps") or ()):
        return False
    if any(c in caps for c in exc.get("caps") or ()):
        return False
    if inc.get("minKernel"):
        want = tuple(int(x) for x in str(inc["minKernel"]).split(".")[:2])
        if _kernel() < want:
            return False
    return True


def _action(sc, name: str, errno_ret: int | None, default_errno: int):
    if name == "SCMP_ACT_ALLOW":
        return sc.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(default_errno if errno_ret is None else errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return sc.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return sc.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return sc.TRAP
    if name == "SCMP_ACT_LOG":
        return sc.LOG
    raise SeccompError(f"unsupported seccomp action {name}")


def compile_profile(profile: dict, caps: Iterable[str]) -> bytes:
    """The BPF program of ``profile`` for a container holding ``caps`` (names like CAP_NET_RAW)."""
    import pyseccomp as sc  # loads libseccomp: only when a container is started

    have = frozenset(caps)
    default_errno = int(profile.get("defaultErrnoRet") or 1)
    filt = sc.SyscallFilter(_action(sc, profile.get("defaultAction", "SCMP_ACT_ERRNO"), None, default_errno))
    native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}.get(_ARCH)
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == native:
            for sub in entry.get("subArchitectures") or ():
                arch = getattr(sc.Arch, sub.removeprefix("SCMP_ARCH_"), None)
                if arch is not None:
                    try:
                        filt.add_arch(arch)
                    except Exception:  # already present, or not supported by this libseccomp
                        pass
    for rule in profile.get("syscalls") or ():
        if not _applies(rule, have):
            continue
        action = _action(sc, rule["action"], rule.get("errnoRet"), default_errno)
        args = [sc.Arg(a["index"], getattr(sc, _OPS[a["op"]]), a["value"], *([a["valueTwo"]] if a.get("valueTwo") else []))
                for a in rule.get("args") or ()]
        for name in rule.get("names") or ([rule["name"]] if rule.get("name") else []):
            try:
                filt.add_rule(action, name, *args)
            except Exception:  # a syscall this libseccomp or architecture does not know: runc skips it too
                continue
    with tempfile.TemporaryFile() as f:
        try:
            filt.export_bpf(f)
        except Exception as exc:
            raise SeccompError(f"seccomp: cannot compile the profile: {exc}") from None
        f.seek(0)
        return f.read()
