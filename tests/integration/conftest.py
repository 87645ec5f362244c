"""Fixtures for CLI-level integration tests: a private engine per test."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cli_engine import Engine, free_subnet


@pytest.fixture
def engine(tmp_path: Path):
    eng = Engine(tmp_path).start()
    yield eng
    eng.stop()


@pytest.fixture
def subnet() -> str:
    return free_subnet()


@pytest.fixture
def name() -> str:
    return f"t{random.randbytes(3).hex()}"

