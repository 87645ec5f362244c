"""The API server's bounds (issue 12, items 2, 10 and 12), on a real unix socket with small limits.

A server with a tiny route table runs in this process; clients are raw sockets, so
every malformed case can be sent as it would come from a broken or hostile client.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.api import schemas
from runtime.api.server import RAW, ApiServer, Hijack, Limits, Router


class Echo(schemas.Body):
    Name: schemas.Short = ""
    Flag: schemas.StrictBool = False
    Items: list[schemas.Short] | None = None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ApiServer, threading.Event]]:
    release = threading.Event()
    r = Router()
    r.add("POST", "/echo", lambda body, **_: body, body=Echo)
    r.add("GET", "/hold", lambda **_: (release.wait(20), {"held": True})[1])
    r.add("GET", "/ping", lambda **_: {"ok": True})
    r.add("POST", "/upload", lambda body, **_: {"size": _drain(body)}, body=RAW)
    r.add("POST", "/attach", lambda **_: Hijack(_echo, "application/vnd.docker.raw-stream"))
    path = str(tmp_path / "api.sock")
    limits = Limits(header_timeout=1.0, body_timeout=1.0, max_pending=50, max_active=4, max_body=4096)
    server = ApiServer(path, r, limits=limits)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    yield path, server, release
    release.set()
    server.shutdown()
    server.server_close()


def _drain(body) -> int:
    n = 0
    while chunk := body.read(1000):
        n += len(chunk)
    return n


def _echo(rfile, sock) -> None:
    """Upper-cases what the client sends until it half-closes."""
    while data := rfile.read1(100):
        sock.sendall(data.upper())


def raw(path: str, data: bytes, wait: float = 10.0) -> tuple[int, dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(wait)
        s.connect(path)
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body or b"null")


def post(path: str, body: bytes, extra: str = "") -> tuple[int, dict]:
    return raw(path, f"POST /echo HTTP/1.0\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)


def test_a_valid_body_reaches_the_handler_checked(served):
    path, _, _ = served
    status, out = post(path, b'{"Name": "a", "Flag": true, "Items": ["x"], "Other": 1}')
    assert status == 200
    assert out == {"Name": "a", "Flag": True, "Items": ["x"], "Other": 1}


@pytest.mark.parametrize("body, words", [
    (b'{"Flag": "false"}', "Flag"),
    (b'{"Items": "abc"}', "Items"),
    (b'{"Name": 1}', "Name"),
    (b'{"Items": [1]}', "Items[0]"),
    (b'[]', "object"),
    (b'"x"', "object"),
    (b'{"Name": ', "not valid JSON"),
    (b'\xff\xfe', "not valid JSON"),
    (b'[' * 100000, "JSON"),
])
def test_a_wrong_body_is_one_line_400(served, body, words):
    path, _, _ = served
    status, out = post(path, body) if len(body) <= 4096 else raw(path, b"POST /echo HTTP/1.0\r\nContent-Length: 4000\r\n\r\n" + body[:4000])
    assert status == 400
    assert words in out["message"] and "\n" not in out["message"]


@pytest.mark.parametrize("length, status", [("abc", 400), ("-1", 400), ("1e3", 400), ("99999999999999999999999", 400), ("5000", 413)])
def test_a_bad_or_huge_content_length_is_answered(served, length, status):
    path, _, _ = served
    got, out = raw(path, f"POST /echo HTTP/1.0\r\nContent-Length: {length}\r\n\r\n".encode())
    assert got == status
    assert "Content-Length" in out["message"] or "too large" in out["message"]


def test_a_short_body_is_400_after_the_body_timeout_and_frees_its_worker(served):
    path, server, _ = served
    status, out = raw(path, b'POST /echo HTTP/1.0\r\nContent-Length: 100\r\n\r\n{"Name":')
    assert status == 400 and "shorter than its Content-Length" in out["message"]
    deadline = time.monotonic() + 5
    while server.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.active == 0


def test_a_silent_connection_is_closed_with_408(served):
    path, server, _ = served
    status, out = raw(path, b"GET /ping HTTP/1.0\r\n")  # no blank line: the headers never end
    assert status == 408
    assert server.pending == 0


def test_idle_connections_beyond_the_cap_push_out_the_oldest_not_the_new(served):
    path, server, _ = served
    idle = []
    for _ in range(120):  # the cap is 50
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        idle.append(s)
    try:
        status, out = raw(path, b"GET /ping HTTP/1.0\r\n\r\n", wait=5)
        assert (status, out) == (200, {"ok": True})
        assert server.pending <= 50
        idle[0].settimeout(5)
        assert b" 408 " in idle[0].recv(4096)  # the oldest was told why
    finally:
        for s in idle:
            s.close()


def test_requests_beyond_max_active_get_503_at_once(served):
    path, server, release = served
    held = []
    for _ in range(4):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b"GET /hold HTTP/1.0\r\n\r\n")
        held.append(s)
    deadline = time.monotonic() + 5
    while server.active < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    status, out = raw(path, b"GET /ping HTTP/1.0\r\n\r\n", wait=5)
    assert status == 503 and "limit" in out["message"]
    release.set()
    for s in held:
        s.settimeout(5)
        assert b" 200 " in s.recv(4096)
        s.close()
    assert raw(path, b"GET /ping HTTP/1.0\r\n\r\n")[0] == 200


def test_client_connections_live_above_fd_setsize(served):
    """Low descriptors stay free for libraries that select() (libnftables)."""
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1100:
        pytest.skip("needs an open-files limit above 1100")
    path, server, release = served
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"GET /hold HTTP/1.0\r\n\r\n")
    try:
        deadline = time.monotonic() + 5
        while server.active < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        mine = os.fstat(s.fileno())
        peer_inode = None
        for fd in os.listdir("/proc/self/fd"):
            target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
            if target.startswith("socket:") and int(fd) >= 1024:
                peer_inode = fd
        assert peer_inode is not None, "the served connection is not above 1023"
        assert mine.st_ino  # our own end is a normal low descriptor
    finally:
        release.set()
        s.close()


def test_unknown_route_and_malformed_request_line(served):
    path, _, _ = served
    assert raw(path, b"GET /nope HTTP/1.0\r\n\r\n")[0] == 404
    assert raw(path, b"garbage\r\n\r\n")[0] == 400
    assert raw(path, b"GET /ping HTTP/1.0\r\nno colon here\r\n\r\n")[0] == 400


def test_an_archive_body_is_read_as_it_arrives_past_the_json_limit(served):
    path, _, _ = served
    data = os.urandom(100_000)  # the JSON limit here is 4096
    assert raw(path, f"POST /upload HTTP/1.0\r\nContent-Type: {RAW}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data) \
        == (200, {"size": 100_000})
    with socket.socket(socket.AF_UNIX) as s:  # no length: up to the half-close
        s.settimeout(10)
        s.connect(path)
        s.sendall(f"POST /upload HTTP/1.0\r\nContent-Type: {RAW}\r\n\r\n".encode() + data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert out.endswith(b'{"size": 100000}')


def test_an_archive_to_a_json_route_and_json_to_an_archive_route_are_415(served):
    path, _, _ = served
    assert raw(path, f"POST /echo HTTP/1.0\r\nContent-Type: {RAW}\r\nContent-Length: 2\r\n\r\n{{}}".encode())[0] == 415
    assert raw(path, b"POST /upload HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")[0] == 415


def test_a_hijacked_connection_carries_both_ways_after_101(served):
    path, _, _ = served
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"POST /attach HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello ")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.0 101 UPGRADED")
        got = b""
        while len(got) < 6:
            got += s.recv(100)
        s.sendall(b"world")
        s.shutdown(socket.SHUT_WR)
        while chunk := s.recv(100):
            got += chunk
    assert got == b"HELLO WORLD"


def test_the_connection_caps_fit_a_small_open_files_limit():
    from runtime.api.server import fit

    small = fit(Limits(), 1024)
    assert small.max_pending + small.max_active <= (1024 - 256) // 2
    assert small.max_active >= 8 and small.max_pending >= 8
    assert fit(Limits(), 1 << 20) == Limits()
