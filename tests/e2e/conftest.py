"""One lab with the whole service configured, under a stack name of its own ("e2e", so
that it runs beside make lab, molecule and tests/lab; LIVESTREAM_E2E_STACK names another),
up for the session and taken down at its end."""

from __future__ import annotations

import os

import pytest

from livestream_lab import config
from livestream_testing.service import lab, machines, ssh, stream_key  # noqa: F401  pylint: disable=unused-import

STACK = os.environ.get("LIVESTREAM_E2E_STACK", "e2e")


@pytest.fixture(scope="session")
def lab_config():
    return config.load(STACK)
