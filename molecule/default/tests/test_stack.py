"""The whole stack on the lab: from the internet (this host), the player and a live
playlist that advances, over HTTPS, trusting only the lab's CA.

The check is configure.yml's closing one (livestream.aws.stream_check) done again through
the probes (livestream_probes.hls, installed in .venv, deciding with the collection's
module_utils/hls.py): every stream's playlist of its configured kind, then every media
playlist, each rendition of a master playlist included, advancing; and the player page
playing the test stream in Chromium, as a viewer's browser would."""

import json
import urllib.parse
from pathlib import Path

import pytest

from livestream_probes.hls import HlsClient
from livestream_testing.service import viewer

LAB = Path("/var/lib/livestream-lab/molecule")
testinfra_hosts = [f"ssh://molecule-frontend?ssh_config={LAB / 'ssh_config'}"]
ADVANCE_WITHIN_S = 30


@pytest.fixture(scope="module")
def lab():
    return json.loads((LAB / "lab.json").read_text())


@pytest.fixture(scope="module")
def client(lab):
    """HTTPS to the frontend's address with the lab's domain as SNI and Host, trusting
    the lab's CA only."""
    return HlsClient(resolve={lab["domain"]: lab["frontend_address"]}, ca_file=lab["ca_cert"], timeout=10)


def test_every_stream_plays(host, lab, client):
    player = f"https://{lab['domain']}/"
    streams = json.loads(client.get(urllib.parse.urljoin(player, "streams.json")))
    assert streams
    # as stream_check: an encoder's stream plays only while its encoder publishes
    playlists = {urllib.parse.urljoin(player, stream["playlist"].lstrip("/")): bool(stream.get("variants"))
                 for stream in streams if not stream.get("encoder")}
    checks = client.streams_advance(playlists, within_s=ADVANCE_WITHIN_S)
    failed = [check.explain() for check in checks if not check]
    assert not failed, "; ".join(failed)


def test_the_player_page_plays_the_test_stream_in_a_browser(lab):
    with viewer(lab) as browser:
        assert browser.open(lab["player_url"] + "?stream=test") == "Live"
        state = browser.wait_playing(min_advance_s=3, timeout=60)
    assert state.width > 0 and state.height > 0, state


def test_the_machines_run_debian_12(host):
    """The scenario's family (create.yml): the other one than the default the other tests run."""
    assert (host.system_info.distribution, host.system_info.release.split(".")[0]) == ("debian", "12")
