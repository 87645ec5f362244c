"""Fixtures shared by the unit tests: no root, no kernel, real SQLite in tmp dirs."""

from __future__ import annotations

import pytest

from netcore.store.sqlite import SqliteStore

_ENV = (
    "NETCORE_TEST_FAIL_STEP",
    "NETCORE_TEST_PAUSE_STEP",
    "NETCORE_TEST_PAUSE_FILE",
    "NETCORE_DISABLE_PLUGIN_AUTOLOAD",
    "NETCORE_TRACE_HOOKS",
    "NETCORE_DUMMY_LOG",
    "NETCORE_UPDATE_GOLDEN",  # read once by tests/unit/golden.py
)


@pytest.fixture(scope="session", autouse=True)
def _leak_check():
    """Unit tests touch no kernel state, so the suite-wide leak check (tests/conftest.py)
    is switched off here: on a shared machine it would otherwise report objects that
    concurrently running root suites own, and its 2 s grace period would blow the unit
    tier's time budget. Integration and packet tests keep the real check."""
    yield


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A switch left in the caller's environment must not change what a unit test sees."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(str(tmp_path))
    yield s
    s.close()
