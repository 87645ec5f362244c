"""The server side of Docker's plugin HTTP (runtime/dockerplugin/transport.py), as dockerd speaks it."""

from __future__ import annotations

import json
import socket

import pytest

from netcore import InvalidConfig
from runtime.dockerplugin.transport import PluginSocket


def _raw(path: str, request: bytes) -> tuple[int, dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), None)
            if length is not None and len(body) >= length:
                break
    status = int(head.split(b" ")[1])
    return status, json.loads(body)


def _post(method: str, body: bytes) -> bytes:
    # what Go's client sends: a Host that is not a host, no Content-Type, Docker's Accept
    return (f"POST /{method} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.fixture
def server(tmp_path):
    def refuse(a):
        raise InvalidConfig("refused: " + a.get("why", ""))

    srv = PluginSocket("t", str(tmp_path / "t.sock"), {
        "Plugin.Activate": lambda a: {"Implements": ["NetworkDriver"]},
        "NetworkDriver.Echo": lambda a: a,
        "NetworkDriver.Nothing": lambda a: None,
        "NetworkDriver.Refuse": refuse,
    })
    srv.start()
    yield srv.path
    srv.close()
    assert not (tmp_path / "t.sock").exists()  # removed on close


def test_empty_body_no_content_type_any_host(server):
    assert _raw(server, _post("Plugin.Activate", b"")) == (200, {"Implements": ["NetworkDriver"]})
    assert _raw(server, _post("NetworkDriver.Echo", b'{"NetworkID": "x"}\n')) == (200, {"NetworkID": "x"})


def test_always_a_json_body_and_the_error_shapes(server):
    assert _raw(server, _post("NetworkDriver.Nothing", b"{}\n")) == (200, {})  # never an empty 200
    assert _raw(server, _post("NetworkDriver.Refuse", b'{"why": "bad"}')) == (500, {"Err": "refused: bad"})
    status, body = _raw(server, _post("NetworkDriver.Unknown", b"{}"))
    assert status == 404 and "Unknown" in body["Err"]
    status, body = _raw(server, _post("NetworkDriver.Echo", b"[1, 2"))
    assert status == 400 and "JSON" in body["Err"]


def test_a_live_socket_is_not_taken_over_and_a_stale_one_is(tmp_path, server):
    with pytest.raises(Exception, match="already serves"):
        PluginSocket("t", server, {})
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # the file stays, nobody listens
    srv = PluginSocket("s", str(stale), {"Plugin.Activate": lambda a: {"Implements": []}})
    srv.start()
    try:
        assert _raw(str(stale), _post("Plugin.Activate", b"")) == (200, {"Implements": []})
    finally:
        srv.close()
