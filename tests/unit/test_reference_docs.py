"""The reference docs cannot drift: every public model field and every driver-facing
OS-layer verb is named in docs/reference/ (and nothing named there is gone)."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

import netcore.models as models

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference"
OSL_MODULES = ("netns", "links", "addrs", "routes", "neigh", "sysctl", "nftrules", "daemons", "birdctl")


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/reference/models.md has no section '## {title}'"
    return match.group(1)


@pytest.mark.parametrize("cls", [getattr(models, n) for n in models.__all__ if dataclasses.is_dataclass(getattr(models, n))],
                         ids=lambda c: c.__name__)
def test_every_model_field_is_in_its_section(cls):
    section = _section((DOCS / "models.md").read_text(), cls.__name__)
    rows = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields - rows == set(), f"{cls.__name__}: fields missing from docs/reference/models.md"
    assert rows - fields == set(), f"{cls.__name__}: docs/reference/models.md lists fields the model no longer has"


@pytest.mark.parametrize("module", OSL_MODULES)
def test_every_osl_verb_is_in_the_reference(module):
    mod = importlib.import_module(f"netcore.osl.{module}")
    text = (DOCS / "osl.md").read_text()
    named = set(re.findall(rf"`{module}\.(\w+)", text))
    assert set(mod.__all__) - named == set(), f"netcore.osl.{module}: verbs missing from docs/reference/osl.md"
    assert named - set(mod.__all__) == set(), f"docs/reference/osl.md names verbs netcore.osl.{module} does not export"
