"""Issue 16, items 1 and 3: ``--format`` Go templates, ``inspect -f``, ``--filter``, ``ps -n/-l/-s``, inspect's fields.

One engine, one scene (an image, a labelled network and volume, a running labelled container
and an exited one), then tables of CLI calls: argv -> exit code and output.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from image_archives import busybox_rootfs_tar, write
from runtime.api.client import Client


@pytest.fixture
def scene(engine, name, tmp_path):
    """``a``: running, label app=web, on bridge, volume mounted; ``b``: exited 3 on network ``n``, wrote 5000 bytes."""
    engine("image", "import", write(str(tmp_path / "rootfs.tar"), busybox_rootfs_tar()), "bb:1")
    s = {"a": f"{name}a", "b": f"{name}b", "n": f"{name}n", "v": f"{name}v"}
    engine("network", "create", "--label", "team=blue", s["n"])
    engine("volume", "create", "--label", "k=v", s["v"])
    client = Client(f"unix://{engine.socket}", autostart=False)
    client.request("POST", "/containers/create", {
        "Name": s["a"], "Image": "bb:1", "Cmd": ["sleep", "300"], "Labels": {"app": "web"},
        "Networks": [{"name": "bridge"}], "Env": {"FOO": "bar"}, "ExposedPorts": {"7000/udp": {}},
        "Mounts": [{"Type": "volume", "Source": s["v"], "Target": "/data"}],
    })
    engine("start", s["a"])
    time.sleep(1.1)  # creation stamps have whole seconds: b must be the newer for -l, -n, since, before
    res = engine("run", "--name", s["b"], "--network", s["n"], "bb:1", "sh", "-c", "head -c 5000 /dev/zero > /big; exit 3", check=False)
    assert res.returncode == 3
    view = engine.json("inspect", s["a"])[0]
    s["a_id"] = view["Id"]
    s["a_net"] = view["NetworkSettings"]["Networks"]["bridge"]
    s["b_id"] = engine.json("inspect", s["b"])[0]["Id"]
    s["image_id"] = engine.json("image", "inspect", "bb:1")[0]["Id"]
    s["subnet"] = engine.json("network", "inspect", s["n"])[0]["IPAM"]["Config"][0]["Subnet"]
    s["e"], s["bind"] = f"{name}e", str(tmp_path)  # e: made by the table, after the listings of containers
    yield s
    engine("rm", "-f", s["a"], s["b"], s["e"], check=False)


def cases(s: dict) -> list[tuple[list[str], int, object]]:
    """(argv, exit code, expected): a string is the exact stdout; a callable checks (stdout, stderr)."""
    a, b, n, v = s["a"], s["b"], s["n"], s["v"]
    net = s["a_net"]
    return [
        # ---- --format on ps
        (["ps", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Image}}"], 0, f"{b} exited bb:1\n{a} running bb:1\n"),
        (["ps", "-a", "--format", "table {{.Names}}\\t{{.Label \"app\"}}"], 0,
         "NAMES".ljust(len(a) + 3) + "app\n" + b.ljust(len(a) + 3) + "\n" + a.ljust(len(a) + 3) + "web\n"),
        (["ps", "--format", "{{.ID}}|{{.Labels}}|{{.Mounts}}|{{.Networks}}|{{.Command}}"], 0,
         f"{s['a_id'][:12]}|app=web|{v}|bridge|\"sleep 300\"\n"),
        (["ps", "--no-trunc", "--format", "{{.ID}}"], 0, f"{s['a_id']}\n"),
        (["ps", "--format", "{{upper .State}} {{len .Names}} {{printf \"%.2s\" .Status}}"], 0, f"RUNNING {len(a)} Up\n"),
        (["ps", "--format", "json"], 0, lambda out, err: [json.loads(x)["Names"] for x in out.splitlines()] == [a]
         and json.loads(out)["Labels"] == "app=web" and json.loads(out)["State"] == "running"),
        (["ps", "-q", "--format", "{{.Names}}"], 0, f"{s['a_id'][:12]}\n"),  # -q wins, as in Docker
        (["ps", "--format", "{{.Nope}}"], 1, lambda out, err: out == "" and err ==
         'Error: failed to execute template: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type '
         "*formatter.ContainerContext\n"),
        (["ps", "--format", "{{.Names"], 1, lambda out, err: err == "Error: template parsing error: template: :1: unclosed action\n"),
        # ---- filters on ps
        (["ps", "-a", "-f", "status=exited", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-f", "status=exited", "--format", "{{.Names}}"], 0, f"{b}\n"),  # a status filter implies -a, as in Docker
        (["ps", "-f", "label=app=web", "-q"], 0, f"{s['a_id'][:12]}\n"),
        (["ps", "-a", "-f", "label=app=db", "-q"], 0, ""),
        (["ps", "-a", "-f", "label=app", "--filter", "status=running", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-f", f"network={n}", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-a", "-f", "exited=3", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-a", "-f", "exited=0", "--format", "{{.Names}}"], 0, ""),
        (["ps", "-a", "-f", "ancestor=bb:1", "--format", "{{.Names}}"], 0, f"{b}\n{a}\n"),
        (["ps", "-a", "-f", "ancestor=nosuch", "--format", "{{.Names}}"], 0, ""),
        (["ps", "-a", "-f", f"name={b}", "-f", f"name={a}", "--format", "{{.Names}}"], 0, f"{b}\n{a}\n"),
        (["ps", "-a", "-f", f"id={s['b_id'][:8]}", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-a", "-f", f"since={a}", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-a", "-f", f"before={b}", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-f", f"volume={v}", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-f", "health=none", "--format", "{{.Names}}"], 0, f"{b}\n{a}\n"),
        (["ps", "-a", "-f", "health=healthy", "-q"], 0, ""),
        (["ps", "-f", "health=great"], 1, lambda out, err: "Unrecognised filter value for health: great" in err),
        (["ps", "-a", "-f", "expose=7000/udp", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-f", "expose=6990-7010/udp", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-f", "expose=7000", "-q"], 0, ""),  # tcp
        (["ps", "-a", "-f", "publish=7000/udp", "-q"], 0, ""),  # exposed, not published
        (["ps", "-f", "publish=web"], 1, lambda out, err: "invalid port range: 'web'" in err),
        (["ps", "-f", "bogus=1"], 1, lambda out, err: err == "Error response from daemon: invalid filter 'bogus'\n"),
        (["ps", "-f", "status=sleeping"], 1, lambda out, err: err == "Error response from daemon: invalid filter 'status=sleeping'\n"),
        (["ps", "-f", "nonsense"], 125, lambda out, err: "bad format of filter (expected name=value)" in err and err.count("\n") == 1),
        # ---- ps -n / -l / -s
        (["ps", "-l", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-n", "1", "--format", "{{.Names}}"], 0, f"{b}\n"),
        (["ps", "-n", "2", "--format", "{{.Names}}"], 0, f"{b}\n{a}\n"),
        (["ps", "-n", "-1", "--format", "{{.Names}}"], 0, f"{a}\n"),
        (["ps", "-a", "-s", "-f", f"name={b}", "--format", "{{.Size}}"], 0,
         lambda out, err: re.fullmatch(r"5(\.\d+)?kB \(virtual [\d.]+MB\)\n", out) is not None),
        (["ps", "-a", "-f", f"name={b}", "--format", "{{.Size}}"], 0,  # .Size in the template asks for sizes, as Docker's
         lambda out, err: out.startswith("5kB (virtual ")),
        (["ps", "-a", "-s", "-f", f"name={b}"], 0, lambda out, err: out.splitlines()[0].split()[-1] == "SIZE"
         and out.splitlines()[1].split()[-3] == "5kB"),
        # ---- inspect -f and inspect's Docker fields
        (["inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.IPPrefixLen}} "
          "{{.NetworkSettings.MacAddress}}", a], 0,
         f"{net['IPAddress']} {net['Gateway']} {net['IPPrefixLen']} {net['MacAddress']}\n"),
        (["inspect", "-f", "{{range $name, $ep := .NetworkSettings.Networks}}{{$name}}={{$ep.IPAddress}}{{end}}", a], 0,
         f"bridge={net['IPAddress']}\n"),
        (["inspect", "-f", "{{.Config.Labels.app}} {{index .Config.Labels \"app\"}} {{.Config.Hostname}}", a], 0,
         lambda out, err: out.split()[:2] == ["web", "web"] and len(out.split()) == 3),
        (["inspect", "-f", "{{json .Config.Env}}", a], 0, lambda out, err: "FOO=bar" in json.loads(out)),
        (["inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{if .State.Pid}}pid{{end}}", a, b], 0,
         "running true 0 pid\nexited false 3 \n"),
        (["inspect", "-f", "{{.NetworkSettings.IPAddress}}|{{.State.FinishedAt | printf \"%.4s\"}}", b], 0,
         lambda out, err: out.startswith("|") and out[1:5].isdigit()),
        (["inspect", "-f", "{{.Nope}}", a], 1,
         lambda out, err: 'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"' in err),
        (["inspect", "-f", "{{.ResolvConfPath}} {{.HostsPath}} {{.GraphDriver.Data.UpperDir}} {{.Platform}}", a], 0,
         lambda out, err: [p.rsplit("/", 1)[-1] for p in out.split()[:3]] == ["resolv.conf", "hosts", "upper"] and out.split()[3] == "linux"),
        (["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", b], 0, lambda out, err: os.path.getsize(out.strip() + "/big") == 5000),
        (["inspect", "-f", "json", a], 0, lambda out, err: json.loads(out)["Id"] == s["a_id"]),
        (["inspect", "-f", "{{.Name}}", n], 0, f"{n}\n"),  # not a container: the network of that name, as Docker
        (["inspect", "--type", "volume", "-f", "{{.Name}} {{.Labels.k}}", v], 0, f"{v} v\n"),
        (["inspect", "--type", "container", n], 1, lambda out, err: f"No such container: {n}" in err),
        (["inspect", f"{n}-nosuch"], 1, lambda out, err: out == "[]\n" and err == f"Error: No such object: {n}-nosuch\n"),
        # ---- the rest of Docker's container inspect shape (e: created only, --entrypoint, -w, -u, a read-only bind, --restart)
        (["create", "--name", s["e"], "--network", "none", "--entrypoint", "sh", "-w", "/tmp", "-u", "65534",
          "-v", f"{s['bind']}:/host:ro", "--restart", "on-failure:2", "bb:1", "-c", "true"], 0, lambda out, err: len(out.strip()) == 64),
        (["inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .HostConfig.Binds}} {{.HostConfig.RestartPolicy.Name}} "
          "{{.Config.WorkingDir}}|{{.Config.User}}|{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", a], 0,
         f'null ["sleep","300"] ["{v}:/data"] no ||volume {v} /data true\n'),
        (["inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .HostConfig.Binds}} {{.HostConfig.RestartPolicy.Name}}:"
          "{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.Config.WorkingDir}}|{{.Config.User}}|"
          "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.RW}}{{end}}|{{.LogPath}}|{{.Path}} {{json .Args}}", s["e"]], 0,
         f'["sh"] ["-c","true"] ["{s["bind"]}:/host:ro"] on-failure:2 /tmp|65534|bind {s["bind"]} /host false||sh ["-c","true"]\n'),
        (["inspect", "-f", "{{.LogPath}}", a], 0, lambda out, err: out.strip().endswith("/log") and os.path.isfile(out.strip())),
        # ---- a missing object: Docker's client words for each kind, every one reported once, exit 1
        (["inspect", "--type", "container", f"{n}-x"], 1, lambda out, err: out == "[]\n" and err == f"Error: No such container: {n}-x\n"),
        (["container", "inspect", n], 1, lambda out, err: out == "[]\n" and err == f"Error: No such container: {n}\n"),
        (["container", "inspect", "-f", "{{.Name}}", a, f"{a}-x", f"{a}-y"], 1,
         lambda out, err: out == f"/{a}\n" and err == f"Error: No such container: {a}-x\nError: No such container: {a}-y\n"),
        (["network", "inspect", f"{n}-x"], 1, lambda out, err: out == "[]\n" and err == f"Error: No such network: {n}-x\n"),
        (["image", "inspect", "nosuch:1"], 1, lambda out, err: out == "[]\n" and err == "Error: No such image: nosuch:1\n"),
        (["volume", "inspect", f"{v}-x"], 1, lambda out, err: out == "[]\n" and err == f"Error: No such volume: {v}-x\n"),
        # ---- networks
        (["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", n], 0, f"{s['subnet']}\n"),
        (["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{.Driver}}", n], 0, f"{s['subnet']} bridge\n"),
        (["network", "ls", "-f", "type=custom", "--format", "{{.Name}} {{.Label \"team\"}} {{.Internal}}"], 0, f"{n} blue false\n"),
        (["network", "ls", "-f", "type=builtin", "--format", "{{.Name}}"], 0, "bridge\nhost\nnone\n"),
        (["network", "ls", "-f", "label=team=blue", "-q"], 0, lambda out, err: len(out.split()) == 1 and len(out.strip()) == 12),
        (["network", "ls", "-f", "driver=bridge", "-f", "name=^bri", "--format", "{{.Name}}"], 0, "bridge\n"),
        (["network", "ls", "-f", "scope=global", "-q"], 0, ""),
        (["network", "ls", "-f", "type=weird"], 1, lambda out, err: "invalid filter: 'type'='weird'" in err),
        (["network", "ls", "-f", "color=red"], 1, lambda out, err: err == "Error response from daemon: invalid filter 'color'\n"),
        (["network", "ls", "--format", "table {{.Name}}\\t{{.Driver}}", "-f", "type=builtin"], 0,
         lambda out, err: out.splitlines()[0] == "NAME      DRIVER" and out.splitlines()[1] == "bridge    bridge"),
        # ---- images and volumes
        (["image", "inspect", "-f", "{{.Id}}", "bb:1"], 0, f"{s['image_id']}\n"),
        (["images", "-f", "reference=bb", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], 0, f"bb:1 {s['image_id'][7:19]}\n"),
        (["images", "-f", "reference=b*:1", "--format", "{{.Repository}}"], 0, "bb\n"),
        (["images", "-f", "dangling=true", "-q"], 0, ""),
        (["images", "-f", "since=host", "--format", "{{.Repository}}"], 0, "bb\n"),  # host: created at 0
        (["images", "-f", "before=bb:1", "--format", "{{.Repository}}"], 0, "host\n"),
        (["images", "-f", "until=2999-01-01", "-q"], 0, lambda out, err: len(out.split()) == 2),
        (["images", "-f", "since=nosuch:1"], 1, lambda out, err: "No such image: nosuch:1" in err),
        (["images", "-f", "size=1"], 1, lambda out, err: "invalid filter 'size'" in err),
        (["volume", "inspect", "-f", "{{.Name}} {{.Labels.k}} {{.Driver}}", v], 0, f"{v} v local\n"),
        (["volume", "ls", "-q", "-f", "dangling=false"], 0, f"{v}\n"),  # a uses it
        (["volume", "ls", "-q", "-f", "dangling=true"], 0, ""),
        (["volume", "ls", "-q", "-f", "dangling=maybe"], 1, lambda out, err: "invalid filter 'dangling=maybe'" in err),
        (["volume", "ls", "-f", "label=k=v", "--format", "{{.Name}} {{.Labels}} {{.Label \"k\"}}"], 0, f"{v} k=v v\n"),
        (["volume", "ls", "-f", f"name={v}", "--format", "table {{.Name}}\\t{{.Driver}}"], 0,
         "VOLUME NAME".ljust(max(14, len(v) + 3)) + "DRIVER\n" + v.ljust(max(14, len(v) + 3)) + "local\n"),
    ]


def test_format_filter_inspect_table(engine, scene):
    failures = []
    for argv, code, want in cases(scene):
        res = engine(*argv, check=False)
        ok = res.returncode == code and (res.stdout == want if isinstance(want, str) else want(res.stdout, res.stderr))
        if not ok:
            failures.append(f"{argv}: exit {res.returncode} (want {code})\nstdout: {res.stdout!r}\nstderr: {res.stderr!r}"
                            + (f"\nwant: {want!r}" if isinstance(want, str) else ""))
    assert not failures, "\n\n".join(failures)


LISTINGS = [(["ps", "-a"], "Names", "NAMES"), (["network", "ls"], "Name", "NAME"), (["images"], "Repository", "REPOSITORY"),
            (["volume", "ls"], "Name", "VOLUME NAME")]


@pytest.mark.parametrize("listing,field,header", LISTINGS, ids=[" ".join(x[0]) for x in LISTINGS])
def test_the_same_templates_on_every_listing(engine, scene, listing, field, header):
    """The language and the output modes are one: each listing answers the same templates alike
    (``F`` below is a field every row of that listing has)."""
    def fmt(template: str, check: bool = True):
        return engine(*listing, "--format", template.replace("F", field), check=check)

    count = len(engine(*listing, "-q").stdout.split())
    assert count >= 1
    def lines(out: str) -> list[dict]:  # without the fields that say how long ago: they move between two calls
        return [{k: v for k, v in json.loads(x).items() if k not in ("RunningFor", "CreatedSince", "Status")} for x in out.splitlines()]

    as_json = [json.loads(x) for x in fmt("{{json .}}").stdout.splitlines()]
    assert lines(fmt("{{json .}}").stdout) == lines(fmt("json").stdout)
    assert len(as_json) == count and all(isinstance(v, str) for row in as_json for v in row.values())  # Docker's strings
    values = [row[field] for row in as_json]
    assert fmt("{{.F}}").stdout.splitlines() == values
    assert fmt("{{if .F}}{{upper .F}}{{else}}-{{end}}").stdout.splitlines() == [x.upper() or "-" for x in values]
    assert fmt("{{.F | lower | printf \"<%s>\"}}").stdout.splitlines() == [f"<{x.lower()}>" for x in values]
    assert fmt("{{len .F}}:{{index (split .F \"\") 0}}").stdout.splitlines() == [f"{len(x)}:{x[0]}" for x in values]
    table = fmt("table {{.F}}\\t{{len .F}}\\t{{upper .F}}").stdout.splitlines()
    # the header: Docker's column name; functions other than len pass their argument through
    assert re.split(r"\s{2,}", table[0]) == [header, str(len(header)), header] and len(table) == count + 1
    assert fmt("{{range $i, $c := split .F \"\"}}{{if lt $i 1}}{{$c}}{{end}}{{end}}").stdout.splitlines() == [x[0] for x in values]
    assert fmt("a{{println}}b").stdout == "a\nb\n" * count
    assert fmt("{{- .F -}}  {{printf \"%q\" .F}}").stdout.splitlines() == [x + json.dumps(x) for x in values]
    for bad, message in (("{{.Nope}}", "failed to execute template: template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type"),
                         ("{{.F", "template parsing error: template: :1: unclosed action"),
                         ("{{nope}}", 'template parsing error: template: :1: function "nope" not defined')):
        res = fmt(bad, check=False)
        assert res.returncode == 1 and res.stderr.startswith("Error: " + message)
        assert res.stderr.count("\n") == 1 and res.stdout == ""


def test_network_prune_filters(engine, name):
    """``network prune --filter``: label, label!, until; a bad key changes nothing."""
    for suffix, labels in (("red", ["--label", "team=red"]), ("blue", ["--label", "team=blue"]), ("bare", [])):
        engine("network", "create", *labels, f"{name}{suffix}")

    def names() -> set[str]:
        return set(engine("network", "ls", "--format", "{{.Name}}").stdout.split())

    res = engine("network", "prune", "-f", "--filter", "color=red", check=False)
    assert res.returncode == 1 and res.stderr == "Error response from daemon: invalid filter 'color'\n"
    res = engine("network", "prune", "-f", "--filter", "until=soon", check=False)
    assert res.returncode == 1 and res.stderr == 'Error response from daemon: failed to parse value as time or duration: "soon"\n'
    assert {f"{name}red", f"{name}blue", f"{name}bare"} <= names()
    assert engine("network", "prune", "-f", "--filter", "until=1h").stdout == ""  # all made just now: none is older
    assert engine("network", "prune", "-f", "--filter", "label=team=red").stdout == f"Deleted Networks:\n{name}red\n"
    assert engine("network", "prune", "-f", "--filter", "label!=team").stdout == f"Deleted Networks:\n{name}bare\n"
    assert f"{name}blue" in names() and {"bridge", "host", "none"} <= names()
    assert engine("network", "prune", "-f", "--filter", "until=2999-01-01T00:00:00Z").stdout == f"Deleted Networks:\n{name}blue\n"
    assert names() == {"bridge", "host", "none"}
