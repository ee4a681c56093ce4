"""One lab with the whole service configured, under a stack name of its own ("e2e", so
that it runs beside make lab, molecule and tests/lab; LIVESTREAM_E2E_STACK names another),
up for the session and taken down at its end."""

from __future__ import annotations

import os
import subprocess

import pytest

from lab_support import inventory_hosts, service_lab, ssh as lab_ssh, stream_key as read_stream_key
from livestream_lab import config

STACK = os.environ.get("LIVESTREAM_E2E_STACK", "e2e")


@pytest.fixture(scope="session")
def lab_config():
    return config.load(STACK)


@pytest.fixture(scope="session")
def lab(lab_config):
    """The lab's summary (lab.json), with the service configured by site.yml."""
    with service_lab(lab_config.stack) as summary:
        yield summary


@pytest.fixture(scope="session")
def machines(lab_config, lab):
    """role -> {name, address}, from the inventory plugin's view of the stack."""
    return inventory_hosts(lab_config)


@pytest.fixture(scope="session")
def stream_key(lab_config, lab):
    """The key of the default stream "test", where site.yml generated it."""
    return read_stream_key(lab_config)


@pytest.fixture(scope="session")
def ssh(lab_config, lab):
    """Runs a command on a lab machine the way an admin would: ssh with the lab's config,
    the backend through the bastion. The caller judges the result."""
    def run(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return lab_ssh(lab_config, host, command, check=False, timeout=timeout)
    return run
