"""One lab with the whole service configured, under a stack name of its own ("e2e", so
that it runs beside make lab, molecule and tests/lab), up for the session and taken down
at its end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab_support import inventory_hosts, require_lab_host, ssh as lab_ssh
from livestream_lab import config, lab as lab_flow

STACK = "e2e"


@pytest.fixture(scope="session")
def lab_config():
    return config.load(STACK)


@pytest.fixture(scope="session")
def lab(lab_config):
    """The lab's summary (lab.json), with the service configured by site.yml."""
    require_lab_host()
    lab_flow.down(lab_config)  # a lab left over by an interrupted run
    try:
        summary = lab_flow.up(lab_config)
        yield summary
    finally:
        lab_flow.down(lab_config)


@pytest.fixture(scope="session")
def machines(lab_config, lab):
    """role -> {name, address}, from the inventory plugin's view of the stack."""
    return inventory_hosts(lab_config)


@pytest.fixture(scope="session")
def stream_key(lab_config, lab):
    """The key of the default stream "test", where site.yml generated it."""
    settings = json.loads((lab_config.state_dir / "group_vars" / "all.json").read_text())
    return (Path(settings["livestream_credentials_dir"]) / "stream-key-test").read_text().strip()


@pytest.fixture(scope="session")
def ssh(lab_config, lab):
    """Runs a command on a lab machine the way an admin would: ssh with the lab's config,
    the backend through the bastion. The caller judges the result."""
    def run(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return lab_ssh(lab_config, host, command, check=False, timeout=timeout)
    return run
