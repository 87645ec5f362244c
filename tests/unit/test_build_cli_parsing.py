"""``netcore build``'s side of the CLI (no engine): bad input is one line before anything is sent,
and what is sent is the context tar with Docker's query."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from runtime.cli import cli


@pytest.fixture
def engine(tmp_path):
    """A socket that keeps each request (line, headers, body) and answers a build's last line."""
    path, seen = str(tmp_path / "engine.sock"), []
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = dict(h.split(": ", 1) for h in lines[1:])
                while len(body) < int(headers.get("Content-Length", 0)):
                    body += conn.recv(65536)
                seen.append((lines[0], headers, body))
                conn.sendall(b'HTTP/1.0 200 OK\r\n\r\n{"stream": "Step 1/1 : FROM scratch\\n"}\n{"aux": {"ID": "sha256:abc"}}\n')

    threading.Thread(target=serve, daemon=True).start()
    yield path, seen
    server.close()


def netcore(engine, *args: str):
    return CliRunner().invoke(cli, list(args), env={"NETCORE_HOST": f"unix://{engine[0]}", "NETCORE_ROOT": None})


def test_the_context_goes_as_a_tar_with_dockers_query(engine, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / "a").write_text("a")
    res = netcore(engine, "build", "-q", "-t", "x:1", "-t", "y", "--build-arg", "A=1", "--label", "l=v", "--target", "s",
                  "--no-cache", str(ctx))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "sha256:abc\n" and res.stderr == ""  # -q: the id only
    (line, headers, body), = engine[1]
    url = urlsplit(line.split()[1])
    assert line.startswith("POST /build?") and headers["Content-Type"] == "application/x-tar"
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "dockerfile": "Dockerfile", "t": "x:1,y", "buildargs": '{"A": "1"}', "labels": '{"l": "v"}', "target": "s", "nocache": "1"}
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "a"]


def test_progress_goes_to_stderr(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    res = netcore(engine, "build", str(tmp_path))
    assert res.exit_code == 0 and res.stdout == ""
    assert res.stderr.splitlines() == ["Sending build context to netcore engine  10.24kB", "Step 1/1 : FROM scratch"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["build"], 1, "the following arguments are required: CONTEXT"),  # Docker: requires exactly 1 argument, exit 1
        (["build", "/nonexistent/ctx"], 1, 'unable to prepare context: path "/nonexistent/ctx" not found'),
        (["build", "--build-arg", "=x", "."], 125, "invalid build-arg '=x': expected KEY=VALUE"),
        (["build", "--label", "novalue", "."], 125, "invalid label 'novalue'"),
        (["build", "-f", "/nonexistent/Dockerfile", "."], 1, "unable to evaluate symlinks in Dockerfile path: lstat /nonexistent/Dockerfile"),
    ],
)
def test_bad_input_is_one_line_before_any_request(engine, args, code, message):
    res = netcore(engine, *args)
    assert res.exit_code == code, res.stderr
    assert res.stderr.startswith("Error: ") and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert engine[1] == []
