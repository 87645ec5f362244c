"""Docker's ``filters``: the API's JSON, the keys' matching, ``until`` times, and the CLI's flag."""

from __future__ import annotations

import json

import pytest

from netcore import InvalidConfig
from runtime import filters as F
from runtime.cli.filterflag import _pair, encode


def test_parse_both_shapes_and_refuse_unknown_keys():
    assert F.parse('{"name": ["a", "b"]}', ["name"]) == {"name": ["a", "b"]}
    assert F.parse('{"label": {"app=web": true, "off": false}}', ["label"]) == {"label": ["app=web"]}
    assert F.parse(None, ["name"]) == {} and F.parse("", ["name"]) == {}
    with pytest.raises(InvalidConfig, match=r"^invalid filter 'color'$"):
        F.parse('{"color": ["red"]}', ["name"])
    for bad in ("[1]", "{nope", '{"name": [1]}'):
        with pytest.raises(InvalidConfig, match="^invalid filter"):
            F.parse(bad, ["name"])


@pytest.mark.parametrize("spec,labels,hit", [
    (["app"], {"app": "web"}, True),
    (["app=web"], {"app": "web"}, True),
    (["app=db"], {"app": "web"}, False),
    (["app", "tier=1"], {"app": "web"}, False),  # every label value must hold
    (["team"], {}, False),
])
def test_labels(spec, labels, hit):
    assert F.Filters(label=spec).labels(labels) is hit


def test_negated_labels_of_prunes():
    f = F.Filters({"label!": ["keep"]})
    assert f.labels({"app": "x"}) and not f.labels({"keep": "1"})


def test_name_is_a_search_and_id_a_prefix_and_values_are_alternatives():
    f = F.Filters(name=["^web", "db$"], id=["3f1c"])
    assert f.name("web1") and f.name("maindb") and not f.name("cache")
    assert f.ident("3f1c0a") and not f.ident("a3f1c")
    assert F.Filters().name("anything") and F.Filters(name=["[bad"]).name("x[bady")  # a bad regex matches as text


def test_until_takes_durations_stamps_and_dates():
    now = 1_000_000.0
    assert F.until_cutoff("10m", now) == now - 600
    assert F.until_cutoff("1h30m", now) == now - 5400
    assert F.until_cutoff("1500ms", now) == now - 1.5
    assert F.until_cutoff("12345", now) == 12345
    assert F.until_cutoff("1970-01-02T00:00:00Z", now) == 86400
    assert F.until_cutoff("1970-01-02", now) == 86400
    with pytest.raises(InvalidConfig, match=r'^failed to parse value as time or duration: "soon"$'):
        F.until_cutoff("soon", now)


def test_stamp_seconds():
    assert F.stamp_seconds("1970-01-01T00:01:00+0000") == 60 and F.stamp_seconds("") == 0 and F.stamp_seconds("junk") == 0


def test_cli_flag_encodes_dockers_json_and_checks_the_shape():
    assert json.loads(encode(("name=a", "name=b", "label=k=v", "label!=x"))["filters"]) == {
        "name": ["a", "b"], "label": ["k=v"], "label!": ["x"]}
    assert encode(()) == {}
    for bad in ("name", "=x", ""):
        with pytest.raises(ValueError, match="bad format of filter"):
            _pair(bad)
