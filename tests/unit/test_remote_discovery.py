"""Finding Docker plugins by Docker's rules (drivers/remote/discovery.py), and the daemon's plugin settings."""

from __future__ import annotations

import json
import socket

import pytest

from drivers.remote.discovery import locate
from netcore import InvalidConfig, PluginError
from runtime.engine import config


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    socks, etc, lib = tmp_path / "run", tmp_path / "etc", tmp_path / "lib"
    for d in (socks, etc, lib):
        d.mkdir()
    monkeypatch.setenv("NETCORE_DOCKER_PLUGIN_SOCKETS", str(socks))
    monkeypatch.setenv("NETCORE_DOCKER_PLUGIN_SPECS", f"{etc}:{lib}")
    return socks, etc, lib


def _sock(path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


def test_sockets_before_specs_and_etc_before_lib(dirs):
    socks, etc, lib = dirs
    (lib / "p.spec").write_text("tcp://127.0.0.1:9\n")
    assert locate("p").scheme == "tcp" and locate("p").address == "127.0.0.1:9"
    (etc / "p.json").write_text(json.dumps({"Name": "p", "Addr": "https://h:1", "TLSConfig": {"CertFile": "c"}}))
    loc = locate("p")
    assert loc.scheme == "https" and loc.tls["InsecureSkipVerify"] is True  # no CAFile: no verification, Docker's rule
    (etc / "p.spec").write_text("unix:///x.sock")
    assert locate("p").address == "/x.sock"  # .spec before .json in one dir
    (socks / "p").mkdir()
    s = _sock(socks / "p" / "p.sock")
    try:
        assert locate("p").address == str(socks / "p" / "p.sock")
        t = _sock(socks / "p.sock")
        try:
            assert locate("p").address == str(socks / "p.sock")
        finally:
            t.close()
    finally:
        s.close()


def test_a_regular_file_named_sock_is_not_a_plugin_and_unknown_names_are_none(dirs):
    socks, _, _ = dirs
    (socks / "f.sock").write_text("")
    assert locate("f") is None
    assert locate("nothing") is None
    assert locate("../etc") is None


def test_bad_spec_files_are_one_line_errors(dirs):
    _, etc, _ = dirs
    (etc / "a.spec").write_text("localhost:9")
    with pytest.raises(PluginError, match="Unknown protocol"):
        locate("a")
    (etc / "b.json").write_text("{not json")
    with pytest.raises(PluginError, match="not valid JSON"):
        locate("b")
    (etc / "c.json").write_text("{}")
    with pytest.raises(PluginError, match='no "Addr"'):
        locate("c")


def test_daemon_plugin_settings():
    assert config.load(None, {"docker-plugins": True}).docker_plugins_dir == "/run/docker/plugins"
    got = config.load(None, {"docker-plugins": True, "docker-plugins-dir": "/tmp/p"})
    assert got.docker_plugins and got.docker_plugins_dir == "/tmp/p"
    assert not config.load(None, {}).docker_plugins
    with pytest.raises(InvalidConfig, match="needs --docker-plugins"):
        config.load(None, {"docker-plugins-dir": "/tmp/p"})
    with pytest.raises(InvalidConfig, match="absolute path"):
        config.load(None, {"docker-plugins": True, "docker-plugins-dir": "rel"})
