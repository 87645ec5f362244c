"""Image references in Docker's grammar, image times and sizes as Docker prints them."""

from __future__ import annotations

import pytest

from netcore import InvalidConfig
from runtime.cli.image import human_size
from runtime.engine.images import _epoch
from runtime.engine.references import is_id_like, normalize


@pytest.mark.parametrize("ref, want", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("docker.io/library/alpine:3.19", "alpine:3.19"),
    ("library/alpine", "alpine:latest"),
    ("docker.io/me/app", "me/app:latest"),
    ("localhost:5000/team/app:v1_2.3-x", "localhost:5000/team/app:v1_2.3-x"),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest"),  # a domain may have capitals
    ("a__b/c-d.e", "a__b/c-d.e:latest"),
])
def test_valid(ref, want):
    assert normalize(ref) == want


@pytest.mark.parametrize("ref, message", [
    ("Foo", "repository name (Foo) must be lowercase"),
    ("app@sha256:abc", "invalid reference format"),
    ("app:", "invalid reference format"),
    ("-app", "invalid reference format"),
    ("app:" + "t" * 129, "invalid reference format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("", "invalid reference format"),
    (" app", "invalid reference format"),
])
def test_invalid(ref, message):
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalize(ref)


def test_id_like():
    assert is_id_like("sha256:abc") and is_id_like("0123abcd") and not is_id_like("busybox") and not is_id_like("sha256:")


def test_epoch_and_sizes():
    assert _epoch("2023-07-18T23:19:33.655005962Z") == 1689722373
    assert _epoch("2023-07-18T23:19:33+02:00") == 1689722373 - 7200
    assert _epoch("") == 0 and _epoch("yesterday") == 0
    assert [human_size(n) for n in (0, 999, 1000, 4261550, 1982296, 57_000_000_000)] == ["0B", "999B", "1kB", "4.26MB", "1.98MB", "57GB"]
