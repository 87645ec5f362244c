"""Golden files: expected output kept as data, compared exactly.

``NETCORE_UPDATE_GOLDEN=1`` rewrites a golden that differs and then fails that test, so an
update run is never green: review the diff, then run again without it. The switch is
read once when the tests are loaded (the unit conftest clears it from every test's
environment) and refused under CI, where it would turn every check into a rewrite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

UPDATE = os.environ.get("NETCORE_UPDATE_GOLDEN") == "1"


def check_golden(path: Path, got: Any) -> None:
    if UPDATE and os.environ.get("CI"):
        pytest.fail("NETCORE_UPDATE_GOLDEN is set under CI: goldens would be rewritten, not checked")
    if UPDATE and (not path.exists() or json.loads(path.read_text()) != got):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2) + "\n")
        pytest.fail(f"{path.name} rewritten: review the diff, then run without NETCORE_UPDATE_GOLDEN")
    assert path.exists(), f"missing golden {path.name}: run with NETCORE_UPDATE_GOLDEN=1 to create it"
    assert got == json.loads(path.read_text()), f"{path.name} differs: review, then NETCORE_UPDATE_GOLDEN=1"
