"""One lab with the whole service configured, under a stack name of its own ("faults", so
that it runs beside make lab, tests/lab and tests/e2e; LIVESTREAM_FAULTS_STACK names
another), up for the session and taken down at its end. The fault tests break it on
purpose, one fault at a time, and each waits until it has recovered."""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass

import pytest

from livestream_lab import config
from livestream_probes.hls import HlsClient
from livestream_testing.service import lab, machines, ssh  # noqa: F401  pylint: disable=unused-import

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
