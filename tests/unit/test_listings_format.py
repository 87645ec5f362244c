"""The listings' rows as Docker's contexts and their output modes, on rows shaped like the engine's."""

from __future__ import annotations

import json
import time

import click
import pytest

from runtime.cli import listings

NOW = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime())
ROWS = [
    {"ID": "b" * 64, "Names": "db", "Image": "pg:16", "Command": "postgres -c fsync=off -c shared_buffers=1GB", "CreatedAt": NOW,
     "State": "exited", "Status": "Exited (3)", "StartedAt": NOW, "FinishedAt": NOW, "Ports": "", "Networks": "",
     "Labels": {}, "Mounts": ["data"], "LocalVolumes": 1, "SizeRw": 5000, "SizeRootFs": 1_990_000},
    {"ID": "a" * 64, "Names": "web", "Image": "host", "Command": "sleep 300", "CreatedAt": NOW, "State": "running",
     "Status": "Up", "StartedAt": NOW, "FinishedAt": None, "Ports": "0.0.0.0:8080->80/tcp", "Networks": "bridge",
     "Labels": {"com.example.some-key": "x", "app": "web"}, "Mounts": [], "LocalVolumes": 0, "SizeRw": 0, "SizeRootFs": 0},
]


class FakeClient:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def request(self, method, path, body=None, query=None):
        self.calls.append((method, path, query))
        return self.answer


class FakeCli:
    def __init__(self, answer):
        self.client = FakeClient(answer)


def ps(capsys, fmt=None, **flags):
    cli = FakeCli(ROWS)
    opts = dict(all_=True, filters=(), fmt=fmt, last=-1, latest=False, no_trunc=False, quiet=False, size=False)
    opts.update(flags)
    listings.ps(cli, **opts)
    return capsys.readouterr().out, cli.client.calls


def test_default_table_is_dockers(capsys):
    out, calls = ps(capsys)
    lines = out.splitlines()
    assert lines[0].startswith("CONTAINER ID   IMAGE     COMMAND   ") and lines[0].endswith("NAMES")
    assert lines[1].startswith("b" * 12 + "   pg:16     " + '"postgres -c fsync=o…"')
    assert lines[2].startswith("a" * 12 + "   host      " + '"sleep 300"') and lines[2].endswith("web")
    assert calls == [("GET", "/containers/json", {"all": "1"})]


def test_size_column_and_query(capsys):
    out, calls = ps(capsys, size=True)
    assert out.splitlines()[0].endswith("SIZE") and out.splitlines()[1].endswith("5kB (virtual 1.99MB)")
    assert out.splitlines()[2].endswith("0B")
    assert calls[0][2] == {"all": "1", "size": "1"}
    _, calls = ps(capsys, fmt="{{.Size}}")  # the template names .Size: sizes are asked for
    assert calls[0][2]["size"] == "1"


def test_limit_and_filters_go_to_the_engine(capsys):
    _, calls = ps(capsys, latest=True, filters=("status=exited", "label=a=b", "label=c"))
    assert calls[0][2]["limit"] == "1"
    assert json.loads(calls[0][2]["filters"]) == {"status": ["exited"], "label": ["a=b", "c"]}
    _, calls = ps(capsys, last=3)
    assert calls[0][2]["limit"] == "3"


def test_json_and_templates(capsys):
    out, _ = ps(capsys, fmt="json")
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[1]["Labels"] == "com.example.some-key=x,app=web" and rows[1]["ID"] == "a" * 12
    assert rows[0]["CreatedAt"].endswith(" +0000 UTC") and rows[0]["Mounts"] == "data" and rows[0]["LocalVolumes"] == "1"
    assert set(rows[0]) == {"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
                            "Ports", "RunningFor", "Size", "State", "Status"}
    out, _ = ps(capsys, fmt='{{.Names}}:{{.Label "app"}}:{{.State}}')
    assert out == "db::exited\nweb:web:running\n"
    out, _ = ps(capsys, fmt='table {{.Names}}\\t{{.Label "com.example.some-key"}}\\t{{.Networks}}')
    assert out == "NAMES     some key   NETWORKS\ndb                   \nweb       x          bridge\n"


def test_a_bad_template_asks_the_engine_nothing(capsys):
    cli = FakeCli(ROWS)
    with pytest.raises(click.ClickException, match=r"^template parsing error: template: :1: unclosed action$"):
        listings.ps(cli, all_=True, filters=(), fmt="{{.Names", last=-1, latest=False, no_trunc=False, quiet=False, size=False)
    assert cli.client.calls == []
    with pytest.raises(click.ClickException, match=r"^failed to execute template: template: :1:2: executing \"\" at <.Nope>"):
        ps(capsys, fmt="{{.Nope}}")


def test_network_and_volume_rows():
    net = listings.network_row({"Id": "c" * 64, "Name": "n", "Driver": "bridge", "Scope": "local", "Internal": True,
                                "Labels": {"team": "a"}, "Created": NOW})
    assert dict(net) == {"CreatedAt": listings.created_at(NOW), "Driver": "bridge", "ID": "c" * 12, "IPv6": "false",
                         "Internal": "true", "Labels": "team=a", "Name": "n", "Scope": "local"}
    assert net.methods["Label"]("team") == "a"
    vol = listings.volume_row({"Name": "v", "Driver": "local", "Scope": "local", "Mountpoint": "/x", "Labels": {}})
    assert vol["Name"] == "v" and vol["Labels"] == "" and vol["Links"] == "N/A"


def test_inspect_templates(capsys):
    from runtime.cli.output import inspect_all

    view = {"Id": "x", "State": {"Running": True, "Pid": 7}, "Config": {"Env": ["A=1"]}}
    cli = FakeCli(view)
    with pytest.raises(click.ClickException, match=r"^template parsing error: template: :1: unclosed action$"):
        inspect_all(cli.client, "container", ["a"], "{{.State")
    assert cli.client.calls == []  # refused before any request
    inspect_all(cli.client, "container", ["a", "b"], "{{.State.Pid}} {{json .Config.Env}}")
    assert capsys.readouterr().out == '7 ["A=1"]\n7 ["A=1"]\n'
    inspect_all(cli.client, "container", ["a"], "json")
    assert json.loads(capsys.readouterr().out) == view
    with pytest.raises(click.ClickException, match=r'^template parsing error: .*map has no entry for key "Nope"$'):
        inspect_all(cli.client, "container", ["a"], "{{.Nope}}")
