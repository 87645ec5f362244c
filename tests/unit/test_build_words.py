"""Docker's word expansion for Dockerfile arguments (runtime.build.words)."""

import pytest

from runtime.build.words import ExpandError, expand

ENV = {"A": "1", "EMPTY": "", "NAME": "Nic"}


@pytest.mark.parametrize(
    "word, out",
    [
        ("plain", "plain"),
        ("$A", "1"),
        ("${A}x", "1x"),
        ("$A$A", "11"),
        ("$UNSET", ""),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${UNSET-dflt}", "dflt"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-$NAME}", "Nic"),
        ("${UNSET:-a b}", "a b"),
        ("'$A'", "$A"),
        ('"$A b"', "1 b"),
        ('"a\\"b"', 'a"b'),
        ('"a\\nb"', "a\\nb"),  # inside double quotes only \" \$ \\ are escapes
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$-b", "a$-b"),
        ("\"2 3\"", "2 3"),
    ],
)
def test_expand(word, out):
    assert expand(word, ENV) == out


def test_escape_directive_backtick():
    assert expand("a`$A", ENV, escape="`") == "a$A"
    assert expand("C:\\dir", ENV, escape="`") == "C:\\dir"


@pytest.mark.parametrize("word", ["'open", '"open', "${A", "${}", "${A:x}"])
def test_malformed(word):
    with pytest.raises(ExpandError):
        expand(word, ENV)


def test_required_variable():
    with pytest.raises(ExpandError, match="UNSET: needed"):
        expand("${UNSET:?needed}", ENV)
    assert expand("${A:?needed}", ENV) == "1"
