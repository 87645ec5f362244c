"""Go templates as Docker users write them: a golden table of template -> output, then the errors.

The data is shaped like ``docker inspect`` of a container; the expected outputs are what Go's
text/template with Docker's functions prints (docs.docker.com, "Format command and log
output", and Go's own rules: maps range in key order, ``<no value>`` for a missing map key,
``map[k:v]`` and ``[a b]`` for collections).
"""

from __future__ import annotations

import pytest

from runtime.cli.formatting import tabwriter
from runtime.cli.gotemplate import Strict, Template, TemplateError, render

DATA = {
    "Id": "3f1c0a4b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70",
    "Name": "/web",
    "Args": ["-c", "sleep 100"],
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0},
    "Config": {"Env": ["PATH=/bin", "FOO=bar"], "Labels": {"com.example.team": "net", "app": "web"}, "Hostname": "web1",
               "Image": "ubuntu:latest", "Cmd": None},
    "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data"}],
    "NetworkSettings": {
        "IPAddress": "172.17.0.2",
        "Networks": {
            "bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1", "MacAddress": "02:42:ac:11:00:02"},
            "backend": {"IPAddress": "10.9.0.5", "Gateway": "10.9.0.1", "MacAddress": "02:42:0a:09:00:05"},
        },
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
    },
    "Size": 1.5,
    "Count": 3.0,
}

GOLDEN = [
    # fields and nesting
    ("{{.Name}}", "/web"),
    ("{{.NetworkSettings.IPAddress}}", "172.17.0.2"),
    ("{{.State.Running}} {{.State.Pid}} {{.State.ExitCode}}", "true 4242 0"),
    ("{{.Config.Cmd}}", "<no value>"),
    ("{{.Config.Nope}}", "<no value>"),
    ("{{.Args}}", "[-c sleep 100]"),
    ("{{.Config.Labels}}", "map[app:web com.example.team:net]"),
    ("{{.Count}} {{.Size}}", "3 1.5"),
    ("{{.}}", None),  # printed below: just must not fail
    # Docker's functions
    ('{{join .Args " , "}}', "-c , sleep 100"),
    ("{{json .Mounts}}", '[{"Type":"volume","Name":"data","Destination":"/data"}]'),
    ("{{json .Config.Labels.app}}", '"web"'),
    ("{{lower .State.Status}} {{upper .State.Status}} {{title .State.Status}}", "running RUNNING Running"),
    ('{{split .Config.Image ":"}}', "[ubuntu latest]"),
    ('{{index (split .Config.Image ":") 1}}', "latest"),
    ("{{println .Name}}", "/web\n"),
    ("{{len .Args}} {{len .Config.Labels}} {{len .Name}}", "2 2 4"),
    ("{{truncate .Id 12}}", "3f1c0a4b5d6e"),
    ("{{pad .State.Status 1 2}}|", " running  |"),
    # range, with $i, $v forms; maps in key order
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "10.9.0.5 172.17.0.2 "),
    ("{{range $net, $conf := .NetworkSettings.Networks}}{{$net}}={{$conf.Gateway}};{{end}}", "backend=10.9.0.1;bridge=172.17.0.1;"),
    ("{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}", "PATH=/bin,FOO=bar"),
    ("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}", "80/tcp -> 8080"),
    ("{{range .Config.Env}}{{println .}}{{end}}", "PATH=/bin\nFOO=bar\n"),
    ("{{range .Config.Cmd}}x{{else}}empty{{end}}", "empty"),
    ("{{range $e := .Args}}[{{$e}}]{{end}}", "[-c][sleep 100]"),
    ("{{range .Args}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}", "sleep 100"),
    ("{{range .Args}}{{.}}{{break}}{{end}}", "-c"),
    # if / else if / else, comparisons, and/or/not
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ('{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{else}}?{{end}}', "R"),
    ("{{if not .State.ExitCode}}ok{{end}}", "ok"),
    ("{{if and .State.Running (gt .State.Pid 100)}}big{{end}}", "big"),
    ("{{or .Config.Cmd .Args}}", "[-c sleep 100]"),
    ('{{if ne .Config.Hostname "web1"}}x{{else}}same{{end}}', "same"),
    ('{{eq .State.Status "a" "running"}}', "true"),
    # with, variables, pipes, parentheses
    ("{{with .NetworkSettings.Networks.bridge}}{{.MacAddress}}{{end}}", "02:42:ac:11:00:02"),
    ("{{with .Config.Cmd}}x{{else}}none{{end}}", "none"),
    ("{{$n := .Name}}{{$n}}{{$n}}", "/web/web"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{range .Args}}{{$.Config.Hostname}}{{end}}", "web1web1"),
    ('{{.Name | printf "%q"}}', '"/web"'),
    ("{{.State.Status | upper | printf \"<%s>\"}}", "<RUNNING>"),
    ('{{(index .NetworkSettings.Networks "backend").IPAddress}}', "10.9.0.5"),
    ('{{index .Config.Labels "com.example.team"}}', "net"),
    ("{{index .Args 1}}", "sleep 100"),
    # printf verbs
    ('{{printf "%s:%d" .Config.Hostname .State.Pid}}', "web1:4242"),
    ('{{printf "%-8s|%5s|" "ab" "cd"}}', "ab      |   cd|"),
    ('{{printf "%v %t %x %05d %%" .Args .State.Running 255 42}}', "[-c sleep 100] true ff 00042 %"),
    ('{{printf "%.2f" .Size}}', "1.50"),
    ('{{print "a" 1 2 "b"}}', "a1 2b"),
    ('{{printf "%s|%d" .State.Pid .Name}}', "%!s(int=4242)|%!d(string=/web)"),  # Go's words for a verb of the wrong type
    # literals, comments, whitespace trimming
    ('{{"quoted"}} {{`raw`}} {{42}} {{true}}', "quoted raw 42 true"),
    ("a{{/* a comment */}}b", "ab"),
    ("x  {{- .Config.Hostname -}}  y", "xweb1y"),
    ("{{- range .Args }}\n  {{ . }}\n{{- end }}", "\n  -c\n  sleep 100"),
    ("no actions at all", "no actions at all"),
    ('{{printf "}}%s{{" .Name}}', "}}/web{{"),  # braces inside quotes do not end the action
    ("a {{-3}} b", "a -3 b"),  # no space after the dash: a negative number, not a trim marker
    ("{{/* }} */}}ok", "ok"),
]


@pytest.mark.parametrize("template,expected", GOLDEN, ids=[t for t, _ in GOLDEN])
def test_golden(template, expected):
    out = render(template, DATA)
    if expected is not None:
        assert out == expected


ERRORS = [
    ("{{.Name", "template: :1: unclosed action"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{nosuch .Name}}", 'template: :1: function "nosuch" not defined'),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{index .Args 5}}", 'template: :1:2: executing "" at <index>: error calling index: index out of range: 5'),
    ("{{.Name.First}}", 'template: :1:2: executing "" at <.Name.First>: can\'t evaluate field First in type string'),
    ("{{$nope}}", 'template: :1: undefined variable "$nope"'),
    ("{{range .Name}}{{end}}", 'template: :1:2: executing "" at <range>: range can\'t iterate over /web'),
]


@pytest.mark.parametrize("template,message", ERRORS, ids=[t for t, _ in ERRORS])
def test_errors_are_gos_one_line(template, message):
    with pytest.raises(TemplateError) as exc:
        render(template, DATA)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_struct_like_rows_refuse_unknown_fields_and_take_method_arguments():
    row = Strict({"ID": "abc", "Names": "web"}, {"Label": lambda k: {"app": "web"}.get(k, "")}, "*formatter.ContainerContext")
    assert render('{{.ID}} {{.Label "app"}}|{{.Label "none"}}|', row) == "abc web||"
    assert render("{{json .}}", row) == '{"ID":"abc","Names":"web"}'  # methods stay out of json
    with pytest.raises(TemplateError, match=r'^template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type \*formatter.ContainerContext$'):
        render("{{.Foo}}", row)


def test_missing_key_error_is_dockers_inspect_mode():
    assert Template("{{.Name}}", missing_key_error=True).execute(DATA) == "/web"
    with pytest.raises(TemplateError, match='map has no entry for key "Nope"'):
        Template("{{.Config.Nope}}", missing_key_error=True).execute(DATA)


def test_tabwriter_is_gos_with_dockers_settings():
    # minwidth 10, padding 3: short columns take 10, long ones their width + 3; the last cell is not padded
    assert tabwriter("NAMES\tSTATUS\nweb\tUp 2 seconds") == "NAMES     STATUS\nweb       Up 2 seconds"
    assert tabwriter("CONTAINER ID\tNAMES\n3f1c0a4b5d6e\tweb") == "CONTAINER ID   NAMES\n3f1c0a4b5d6e   web"
    # a line without the cell ends the column's block: the next block has its own width
    assert tabwriter("a\tb\nnone\nlongervalue12\tc") == "a         b\nnone\nlongervalue12   c"
