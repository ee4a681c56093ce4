"""One lab with the whole service configured, under a stack name of its own ("faults", so
that it runs beside make lab, tests/lab and tests/e2e; LIVESTREAM_FAULTS_STACK names
another), up for the session and taken down at its end. The fault tests break it on
purpose, one fault at a time, and each waits until it has recovered."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from dataclasses import dataclass

import pytest

from lab_support import inventory_hosts, service_lab, ssh as lab_ssh
from livestream_lab import config
from probes.hls import HlsClient

STACK = os.environ.get("LIVESTREAM_FAULTS_STACK", "faults")


@dataclass(frozen=True)
class Stream:
    name: str
    url: str  # its playlist, as the player page finds it

    @property
    def unit(self) -> str:
        return f"livestream-stream@{self.name}.service"


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
def ssh(lab_config, lab):
    """Runs a command on a lab machine the way an admin would (the caller judges the result)."""
    def run(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return lab_ssh(lab_config, host, command, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            # a machine that is going down can leave a connection hanging: a failed attempt
            return subprocess.CompletedProcess(error.cmd, 255, "", f"timed out after {timeout}s")
    return run


@pytest.fixture(scope="session")
def client(lab):
    """HTTPS from the root namespace (the internet) to the frontend's address, the lab's
    domain as SNI and Host, trusting the lab's ACME root only. A short timeout: the tests
    poll through restarts and reboots, where a connection may hang."""
    return HlsClient(resolve={lab["domain"]: lab["frontend_address"]}, ca_file=lab["ca_cert"], timeout=2)


@pytest.fixture(scope="session")
def stream(lab, client):
    """The first stream the player page offers (streams.json)."""
    offered = json.loads(client.get(urllib.parse.urljoin(lab["player_url"], "streams.json")))
    assert offered, "the player offers no stream"
    return Stream(offered[0]["name"], urllib.parse.urljoin(lab["player_url"], offered[0]["playlist"]))
