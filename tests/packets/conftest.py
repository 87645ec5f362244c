"""Fixtures for the scapy packet tests; the helpers live in ``pktlab``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # pktlab, whatever the import mode
from pktlab import Lab, rand_port  # noqa: E402


@pytest.fixture
def lab(controller: Any, unique: str) -> Iterator[Lab]:
    """Networks, sandboxes and scapy sockets on a started controller; sockets closed at teardown."""
    lab = Lab(controller, unique)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def port() -> int:
    return rand_port()
