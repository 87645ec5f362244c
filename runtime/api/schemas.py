"""The API's request types, declared once per route and checked at the edge (pydantic).

A route names its body model (``Router.add(..., body=NetworkCreate)``) and query model;
the server validates before any handler runs, so a wrong type is a 400 with one line
(``"Internal": "false"``, ``"Cmd": "true"``) instead of a crash or a silent conversion.
Types are strict: no string is taken for a boolean, no string for a list. Keys a
model does not name are let through to the handler (Docker ignores unknown fields),
so a route that grows a field keeps working until its model names it.

A handler gets plain dicts (``model_dump``): every declared key is present, with its
default when the client left it out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

__all__ = ["Invalid", "parse_body", "parse_query", "Body", "Query", "Empty", "NetworkCreate", "NetworkConnect",
           "NetworkDisconnect", "ContainerRun", "StopQuery", "FlagQuery", "LogsQuery", "ListQuery", "RemoveQuery",
           "KillQuery", "WaitQuery", "ResizeQuery", "AttachQuery"]

Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Short = Annotated[StrictStr, Field(max_length=255)]
Text = Annotated[StrictStr, Field(max_length=65536)]


class Invalid(ValueError):
    """A request that does not fit its route's types: one line for a 400."""


class Body(BaseModel):
    """Base of request bodies: strict JSON types, unknown keys kept for the handler."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=False)


class Query(BaseModel):
    """Base of query strings: values come as text, so ``t=10`` is an int and ``all=1`` a bool."""

    model_config = ConfigDict(strict=False, extra="allow")


# ------------------------------------------------------------------ networks --


class IpamConfig(Body):
    Subnet: Short | None = None
    Gateway: Short | None = None
    IPRange: Short | None = None
    AuxiliaryAddresses: dict[Short, Short] | None = None


class IpamSettings(Body):
    Driver: Short | None = None
    Config: list[IpamConfig] | None = None
    Options: dict[StrictStr, Text] | None = None


class NetworkCreate(Body):
    Name: Short = ""
    Driver: Short | None = None
    IPAM: IpamSettings | None = None
    Options: dict[Short, Text] | None = None
    Labels: dict[Short, Text] | None = None
    Internal: StrictBool = False
    Attachable: StrictBool = False


class EndpointSettings(Body):
    IPAddress: Short | None = None
    Aliases: list[Short] | None = None
    GwPriority: Int32 | None = None


class NetworkConnect(Body):
    Container: Short = ""
    EndpointConfig: EndpointSettings | None = None


class NetworkDisconnect(Body):
    Container: Short = ""
    Force: StrictBool = False


# ------------------------------------------------------------------ containers --


class RunNetwork(Body):
    name: Short
    ip: Short | None = None
    aliases: list[Short] | None = None
    gw_priority: Int32 | None = None


class HostBinding(Body):
    HostIp: Short | None = None
    HostPort: Short | None = None


class HealthcheckConfig(Body):
    """Docker's: ``Test`` as ``["CMD", ...]`` / ``["CMD-SHELL", "..."]`` / ``["NONE"]``, durations in nanoseconds."""

    Test: list[Text] | None = None
    Interval: Annotated[StrictInt, Field(ge=0)] | None = None
    Timeout: Annotated[StrictInt, Field(ge=0)] | None = None
    Retries: Int32 | None = None
    StartPeriod: Annotated[StrictInt, Field(ge=0)] | None = None
class RestartPolicySpec(Body):
    Name: Short = ""
    MaximumRetryCount: Int32 = 0


class TmpfsSpec(Body):
    SizeBytes: Annotated[StrictInt, Field(ge=0)] | None = None
    Mode: Annotated[StrictInt, Field(ge=0, le=0o7777)] | None = None


class MountSpec(Body):
    Type: Short = "volume"
    Source: Text = ""
    Target: Text = ""
    ReadOnly: StrictBool = False
    TmpfsOptions: TmpfsSpec | None = None


class ContainerRun(Body):
    Name: Short | None = None
    Cmd: list[Text] | None = None
    Env: dict[Text, Text] | None = None
    WorkingDir: Text | None = None
    Hostname: Short | None = None
    Networks: list[RunNetwork] | None = None
    AutoRemove: StrictBool = False
    ExposedPorts: dict[Short, dict[str, Any]] | None = None
    PortBindings: dict[Short, list[HostBinding] | None] | None = None
    PublishAllPorts: StrictBool = False
    Dns: list[Short] | None = None
    Labels: dict[Short, Text] | None = None
    Healthcheck: HealthcheckConfig | None = None
    Tty: StrictBool = False
    OpenStdin: StrictBool = False
    StdinOnce: StrictBool = False
    RestartPolicy: RestartPolicySpec | None = None
    Image: Text = "host"
    Entrypoint: list[Text] | None = None
    User: Short | None = None
    Mounts: list[MountSpec] | None = None
    ReadonlyRootfs: StrictBool = False
    CapAdd: list[Short] | None = None
    CapDrop: list[Short] | None = None
    Privileged: StrictBool = False


class Empty(Body):
    """A route that takes no fields (an empty object, or no body at all)."""


class FlagQuery(Query):
    """No parameters of its own (a base for routes whose query is free)."""


class ListQuery(Query):
    all: bool = False
    limit: Annotated[int, Field(ge=-1)] = 0  # ps -n: the N newest, in every state
    size: bool = False  # ps -s: SizeRw and SizeRootFs
    filters: Text | None = None  # Docker's JSON, read by runtime.filters


class StopQuery(Query):
    t: Annotated[int, Field(ge=0, le=24 * 3600)] = 10


class RemoveQuery(Query):
    force: bool = False
    v: bool = False  # rm -v: the container's anonymous volumes too


class KillQuery(Query):
    signal: Short = "KILL"


class WaitQuery(Query):
    condition: Literal["not-running", "next-exit"] = "not-running"


class ResizeQuery(Query):
    h: Annotated[int, Field(ge=0, le=65535)]
    w: Annotated[int, Field(ge=0, le=65535)]


class AttachQuery(Query):
    stream: bool = False
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    logs: bool = False


class LogsQuery(Query):
    follow: bool = False


# ------------------------------------------------------------------ parsing ---


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _message(exc: ValidationError, what: str) -> str:
    err = exc.errors(include_url=False)[0]
    if err["type"] == "json_invalid":
        return f"{what} is not valid JSON"
    where = _where(tuple(p for p in err["loc"] if p not in ("function-after",)))
    got = err.get("input")
    shown = ""
    if err["type"] not in ("missing",) and not isinstance(got, (dict, list)):
        text = repr(got)
        shown = f", got {text if len(text) <= 40 else text[:37] + '...'}"
    line = f"invalid {what}: {where}: {err['msg']}{shown}" if where else f"invalid {what}: {err['msg']}{shown}"
    return " ".join(line.split())


def parse_body(model: Any, raw: bytes) -> Any:
    """The body a handler gets: None if empty, the bytes for ``RAW``, else a checked dict."""
    if model == "raw":
        return raw
    if not raw.strip():
        raw = b"{}" if model is not None else b""
        if not raw:
            return None
    if model is None:  # a route that declared nothing: any JSON object, as it came
        import json

        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise Invalid("request body is not valid JSON") from None
        if not isinstance(value, dict):
            raise Invalid("invalid request body: expected a JSON object")
        return value
    try:
        return model.model_validate_json(raw).model_dump()
    except ValidationError as exc:
        raise Invalid(_message(exc, "request body")) from None
    except (ValueError, RecursionError):  # nesting beyond the parser's limit
        raise Invalid("request body is not valid JSON") from None


def parse_query(model: Any, query: dict[str, str]) -> dict[str, Any]:
    if model is None:
        return query
    try:
        return model.model_validate(query).model_dump()
    except ValidationError as exc:
        raise Invalid(_message(exc, "query parameter")) from None
