"""The fault tests run on the service suites' lab (tests/conftest.py: after tests/e2e, on the
same lab), break it on purpose, one fault at a time, and each waits until it has recovered."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

import pytest

from livestream_probes.hls import HlsClient


@dataclass(frozen=True)
class Stream:
    name: str
    url: str  # its playlist, as the player page finds it

    @property
    def unit(self) -> str:
        return f"livestream-stream@{self.name}.service"


@pytest.fixture(scope="session")
def client(lab):
    """HTTPS from the root namespace (the internet) to the frontend's address, the lab's
    domain as SNI and Host, trusting the lab's ACME root only. A short timeout: the tests
    poll through restarts and reboots, where a connection may hang."""
    return HlsClient(resolve={lab["domain"]: lab["frontend_address"]}, ca_file=lab["ca_cert"], timeout=2)


@pytest.fixture(scope="session")
def stream(lab, client):
    """The first stream the player page offers (streams.json) that the backend makes itself
    (not one an encoder publishes)."""
    offered = [item for item in json.loads(client.get(urllib.parse.urljoin(lab["player_url"], "streams.json")))
               if not item.get("encoder")]
    assert offered, "the player offers no stream the backend makes"
    return Stream(offered[0]["name"], urllib.parse.urljoin(lab["player_url"], offered[0]["playlist"]))
