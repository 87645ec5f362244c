"""Request bodies are checked at the API's edge (issue 12, item 10).

The cases of the adversarial run, one by one, then hypothesis throwing generated
bodies at every route of the engine's table: never a 500, and a refused request
changes nothing (store nor kernel).
"""

from __future__ import annotations

import json
import re
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_engine import engine_links
from runtime.engine.daemon import Engine as EngineCore

pytestmark = pytest.mark.root


def call(path: str, method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    head = f"{method} {url} HTTP/1.0\r\nContent-Length: {len(data)}\r\n\r\n".encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(head + data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head_out, _, payload = out.partition(b"\r\n\r\n")
    status = int(head_out.split()[1])
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, payload


def snapshot(path: str) -> tuple:
    nets = call(path, "GET", "/networks")[1]
    ctrs = call(path, "GET", "/containers/json?all=1")[1]
    return (sorted((n["Id"], n["Name"], n["Internal"], json.dumps(n["Options"], sort_keys=True)) for n in nets),
            sorted(c["ID"] for c in ctrs))


CASES = [
    ("POST", "/networks/create", {"Name": "nctv1", "Internal": "false"}, "Internal"),
    ("POST", "/networks/create", {"Name": "nctv1", "Internal": 0}, "Internal"),
    ("POST", "/networks/create", {"Name": 5}, "Name"),
    ("POST", "/networks/create", {"Name": "nctv1", "Driver": ["bridge"]}, "Driver"),
    ("POST", "/networks/create", {"Name": "nctv1", "Options": ["a"]}, "Options"),
    ("POST", "/networks/create", {"Name": "nctv1", "Options": {"a": 1}}, "Options.a"),
    ("POST", "/networks/create", {"Name": "nctv1", "Labels": "x=y"}, "Labels"),
    ("POST", "/networks/create", {"Name": "nctv1", "IPAM": "10.0.0.0/24"}, "IPAM"),
    ("POST", "/networks/create", {"Name": "nctv1", "IPAM": {"Config": {"Subnet": "x"}}}, "IPAM.Config"),
    ("POST", "/networks/create", {"Name": "nctv1", "IPAM": {"Config": [{"Subnet": 10}]}}, "Subnet"),
    ("POST", "/networks/create", ["nctv1"], "object"),
    ("POST", "/containers/run", {"Cmd": "true"}, "Cmd"),
    ("POST", "/containers/run", {"Cmd": ["true", 1]}, "Cmd[1]"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Env": ["A=B"]}, "Env"),
    ("POST", "/containers/run", {"Cmd": ["true"], "AutoRemove": "yes"}, "AutoRemove"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Networks": "bridge"}, "Networks"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Networks": [{"name": "bridge", "aliases": "abc"}]}, "aliases"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Networks": [{"name": "bridge", "gw_priority": "1"}]}, "gw_priority"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Networks": [{}]}, "name"),
    ("POST", "/containers/run", {"Cmd": ["true"], "PortBindings": {"80/tcp": {"HostPort": "8080"}}}, "PortBindings"),
    ("POST", "/containers/run", {"Cmd": ["true"], "ExposedPorts": ["80/tcp"]}, "ExposedPorts"),
    ("POST", "/containers/run", {"Cmd": ["true"], "Dns": "1.1.1.1"}, "Dns"),
    ("POST", "/containers/run", {"Cmd": ["true"], "PublishAllPorts": 1}, "PublishAllPorts"),
    ("POST", "/networks/bridge/connect", {"Container": "x", "EndpointConfig": {"Aliases": "abc"}}, "Aliases"),
    ("POST", "/networks/bridge/connect", {"Container": "x", "EndpointConfig": {"GwPriority": 2**80}}, "GwPriority"),
    ("POST", "/networks/bridge/connect", {"Container": ["x"]}, "Container"),
    ("POST", "/networks/bridge/disconnect", {"Container": "x", "Force": "true"}, "Force"),
    ("POST", "/containers/x/stop?t=abc", None, "t"),
    ("POST", "/containers/x/stop?t=-5", None, "t"),
    ("GET", "/containers/json?all=maybe", None, "all"),
    ("POST", "/system/reset", [], "object"),
]


@pytest.mark.parametrize("method, url, body, words", CASES, ids=[f"{c[1]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_wrong_types_are_a_400_with_one_line_and_change_nothing(engine, method, url, body, words):
    before = snapshot(engine.socket)
    status, out = call(engine.socket, method, url, body)
    assert status == 400, out
    assert words in out["message"] and "\n" not in out["message"]
    assert snapshot(engine.socket) == before


def test_the_cli_shows_the_400_as_one_line(engine):
    from runtime.api.client import ApiError, Client

    client = Client(f"unix://{engine.socket}", autostart=False)
    with pytest.raises(ApiError) as err:
        client.request("POST", "/networks/create", {"Name": "nctv2", "Internal": "false"})
    assert err.value.status == 400


# ------------------------------------------------------------------ property --

def _routes() -> list[Any]:
    """The engine's real route table (built without an engine: handlers are only referenced)."""
    class Unbuilt(SimpleNamespace):
        def __getattr__(self, name: str) -> None:  # any part of the engine a route refers to
            return None

    return EngineCore.router(Unbuilt(root="")).routes  # type: ignore[arg-type]


def _url(route: Any, ref: str) -> str:
    from urllib.parse import quote

    path = re.sub(r"\(\?P<\w+>[^)]*\)", quote(ref, safe="") or "x", route.pattern.pattern.strip("^$"))
    return path.replace("\\", "")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
SAFE_CMDS = st.one_of(json_values, st.just(["true"]), st.just(["/nonexistent-nct"]), st.just([]))


def _body_strategy(route: Any) -> st.SearchStrategy[bytes]:
    """Bodies near the route's declared fields (so that the checks are reached), and junk."""
    junk = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40))
    model = route.body
    if model is None or isinstance(model, str) or not hasattr(model, "model_fields"):
        return junk
    fields = {}
    for name in model.model_fields:
        fields[name] = SAFE_CMDS if name == "Cmd" else json_values
    if "Cmd" in fields:  # a run always has a harmless command, or a wrong-typed one
        shaped = st.fixed_dictionaries({"Cmd": SAFE_CMDS}, optional={k: v for k, v in fields.items() if k != "Cmd"})
    else:
        shaped = st.fixed_dictionaries({}, optional=fields)
    return st.one_of(junk, shaped.map(lambda d: json.dumps(d).encode()))


def _clean(path: str, baseline: tuple) -> None:
    nets, ctrs = snapshot(path)
    for cid in set(ctrs) - set(baseline[1]):
        call(path, "DELETE", f"/containers/{cid}?force=1")
    for nid, *_ in set(nets) - set(baseline[0]):
        call(path, "DELETE", f"/networks/{nid}")


STREAMS_UNTIL_CLOSED = {("GET", "^/events$")}  # answers that never end by themselves (Docker's event stream)


def test_generated_bodies_at_every_route_never_500_and_refusals_change_nothing(engine):
    routes = [r for r in _routes() if (r.method, r.pattern.pattern) not in STREAMS_UNTIL_CLOSED]
    assert len(routes) >= 10
    baseline = snapshot(engine.socket)
    links_before = engine_links(engine)
    seen: dict[str, set[int]] = {}

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def one_route(route: Any, data: Any) -> None:
        ref = data.draw(st.one_of(st.sampled_from(["bridge", "none", "nctnope", "0", "bridge/x"]), st.text(min_size=1, max_size=12)))
        body = data.draw(_body_strategy(route))
        if route.method == "POST" and route.pattern.pattern.startswith("^/system/reset"):
            body = data.draw(st.sampled_from([b"[]", b"1", b"{", b'"x"', b"\xff"]))  # a valid one would reset the engine
        before = snapshot(engine.socket)
        status, out = call(engine.socket, route.method, _url(route, ref), raw=body)
        seen.setdefault(f"{route.method} {route.pattern.pattern}", set()).add(status)
        assert status < 500, (route.method, route.pattern.pattern, body, out)
        if status >= 400:
            assert isinstance(out, dict) and "\n" not in out.get("message", "\n"), out
            after = snapshot(engine.socket)
            if ': exec: "' in out["message"] and after[0] == before[0]:
                # Docker's: a run whose command cannot be run leaves its container Created, nothing else
                made = sorted(set(after[1]) - set(before[1]))
                assert len(made) <= 1 and set(before[1]) <= set(after[1]), (body, made)
                for cid in made:
                    state = call(engine.socket, "GET", f"/containers/{cid}/json")[1]["State"]
                    assert (state["Status"], state["ExitCode"] in (126, 127)) == ("created", True), state
                _clean(engine.socket, baseline)
            else:
                assert after == before, (route.method, route.pattern.pattern, body)
        else:
            _clean(engine.socket, baseline)

    for route in routes:
        one_route(route)
    assert snapshot(engine.socket) == baseline
    assert engine_links(engine) == links_before
    assert any(400 in codes for codes in seen.values())
