"""The whole stack on the lab: from the internet (this host), the player and a live
playlist that advances, over HTTPS, trusting only the lab's CA."""

import json
import re
import ssl
import time
import urllib.request
from pathlib import Path

import pytest

LAB = Path("/var/lib/livestream-lab/molecule")
testinfra_hosts = [f"ssh://molecule-frontend?ssh_config={LAB / 'ssh_config'}"]


@pytest.fixture(scope="module")
def fetch():
    lab = json.loads((LAB / "lab.json").read_text())
    context = ssl.create_default_context(cafile=lab["ca_cert"])

    def get(path):
        with urllib.request.urlopen(f"https://{lab['domain']}{path}", context=context, timeout=10) as response:
            return response.read().decode()

    return get


def _sequence(playlist):
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))


def test_every_stream_plays(host, fetch):
    streams = json.loads(fetch("/streams.json"))
    assert streams
    for stream in streams:
        playlist = fetch("/" + stream["playlist"].lstrip("/"))
        if "EXT-X-STREAM-INF" in playlist:
            rendition = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
            path = "/hls/" + rendition
        else:
            path = "/" + stream["playlist"].lstrip("/")
        first = _sequence(fetch(path))
        deadline = time.monotonic() + 30
        while _sequence(fetch(path)) <= first:
            assert time.monotonic() < deadline, f"{path} does not advance"
            time.sleep(1)
