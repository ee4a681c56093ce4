"""One lab with the whole service configured, under a stack name of its own ("e2e", so
that it runs beside make lab, molecule and tests/lab), up for the session and taken down
at its end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from livestream_lab import config, lab as lab_flow

STACK = "e2e"


@pytest.fixture(scope="session")
def lab_config():
    return config.load(STACK)


@pytest.fixture(scope="session")
def lab(lab_config):
    """The lab's summary (lab.json), with the service configured by site.yml."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    if not shutil.which("systemd-nspawn"):
        pytest.fail("missing lab tools: run `make setup-lab`")
    lab_flow.down(lab_config)  # a lab left over by an interrupted run
    try:
        summary = lab_flow.up(lab_config)
        yield summary
    finally:
        lab_flow.down(lab_config)


@pytest.fixture(scope="session")
def machines(lab):
    """role -> {name, address}, from the inventory plugin's view of the stack."""
    def inventory(*arguments: str) -> dict:
        result = subprocess.run(["ansible-inventory", "-i", lab["inventory"], *arguments],
                                capture_output=True, text=True, check=True, timeout=120)
        return json.loads(result.stdout)

    groups = inventory("--list")
    found = {}
    for role in ("bastion", "frontend", "backend"):
        name = groups[role]["hosts"][0]
        found[role] = {"name": name, "address": inventory("--host", name)["ansible_host"]}
    return found


@pytest.fixture(scope="session")
def stream_key(lab_config, lab):
    """The key of the default stream "test", where site.yml generated it."""
    settings = json.loads((lab_config.state_dir / "group_vars" / "all.json").read_text())
    return (Path(settings["livestream_credentials_dir"]) / "stream-key-test").read_text().strip()


@pytest.fixture(scope="session")
def ssh(lab):
    """Runs a command on a lab machine the way an admin would: ssh with the lab's config,
    the backend through the bastion."""
    def run(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", lab["ssh_config"], host, command],
                              capture_output=True, text=True, timeout=timeout, check=False)
    return run
