"""Restreaming and audio-only streams, on the service reconfigured for the module with
`livestream_streams` (after the other service tests; not put back: tests/conftest.py): the test pattern also sent to two RTMP servers on
the lab's internet (where YouTube or Twitch would be), one of them down at first, and a
"radio" stream of audio alone.

A destination that is down disturbs neither the other nor the HLS output, and is tried again
until it answers; the radio stream plays in Chromium as audio; no destination's key reaches
a journal, a log or a process list a user but root can read."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from livestream_lab import config
from livestream_probes.hls import HlsClient
from livestream_testing.lab import INGEST_STREAM, STREAM, stream_key
from livestream_testing.playbook import Runner
from livestream_testing.service import secrets_found, viewer

pytestmark = pytest.mark.lab

CONFIGURE = config.REPOSITORY / "playbooks" / "configure.yml"
RADIO = "radio"
# the receivers' ports on the lab's internet address
PORTS = {"first": 19351, "second": 19352}
# a receiver takes one publisher and stops by itself after this long
RECEIVER_SECONDS = 300
# the second destination comes up this long after the first: until then it refuses
SECOND_LATE_S = 20
# how soon a destination that comes up gets the stream (the unit starts again every 2 s)
RETRIED_WITHIN_S = 30


class Receiver:
    """An RTMP server on the lab's internet (ffmpeg in listen mode, one publisher), writing what
    it gets to an FLV file that ffprobe reads."""

    def __init__(self, address: str, port: int, directory: Path):
        self.url = f"rtmp://{address}:{port}/live"
        self.file = directory / f"received-{port}.flv"
        self.process: subprocess.Popen | None = None

    def start(self) -> Receiver:
        self.process = subprocess.Popen(
            ["timeout", str(RECEIVER_SECONDS), "ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error",
             "-listen", "1", "-i", f"{self.url}/stream", "-c", "copy", "-f", "flv", "-y", str(self.file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return self

    def seconds(self) -> float:
        """Seconds of video received so far (0 before anything came)."""
        if not self.file.exists() or self.file.stat().st_size == 0:
            return 0.0
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-select_streams", "v:0",
                                "-of", "csv=p=0", str(self.file)], capture_output=True, text=True, timeout=60, check=False)
        times = [float(value) for value in probe.stdout.split() if value.replace(".", "", 1).isdigit()]
        return max(times) - min(times) if times else 0.0

    def wait_for(self, seconds: float, within_s: float) -> float:
        deadline = time.monotonic() + within_s
        got = self.seconds()
        while got < seconds and time.monotonic() < deadline:
            time.sleep(1)
            got = self.seconds()
        return got

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def configure(lab, tmp_path, overrides: dict):
    runner = Runner(tmp_path, env=dict(os.environ))
    return runner.playbook(CONFIGURE, "-e", json.dumps(overrides), inventory=lab["inventory"])


@pytest.fixture(scope="module")
def destination_keys():
    return {name: f"{name}-{secrets.token_hex(10)}" for name in PORTS}


@pytest.fixture(scope="module")
def receivers(lab_config, tmp_path_factory):
    directory = tmp_path_factory.mktemp("receivers")
    found = {name: Receiver(str(lab_config.internet_address), port, directory) for name, port in PORTS.items()}
    yield found
    for receiver in found.values():
        receiver.stop()


@pytest.fixture(scope="module")
def restreaming(lab, lab_config, receivers, destination_keys, tmp_path_factory):
    """The service with the test pattern restreamed to both receivers (only the first one up)
    and a radio stream (left so: the lab's next switch, test_cdn_service, configures its own
    streams, tests/conftest.py)."""
    receivers["first"].start()
    streams = [
        {"name": STREAM, "source": "testsrc", "mode": "copy", "key": stream_key(lab_config, STREAM),
         "restream": [{"url": receivers[name].url, "key": destination_keys[name]} for name in PORTS]},
        {"name": INGEST_STREAM, "source": "ingest", "mode": "transcode", "key": stream_key(lab_config, INGEST_STREAM)},
        {"name": RADIO, "source": "testsrc", "mode": "audio", "key": f"radio-{secrets.token_hex(12)}"},
    ]
    result = configure(lab, tmp_path_factory.mktemp("configure"), {"livestream_streams": streams})
    assert result.returncode == 0, result.stdout[-3000:]
    for key in [stream["key"] for stream in streams] + list(destination_keys.values()):
        assert key not in result.stdout, "a key in Ansible's output"
    return streams


@pytest.fixture(scope="module")
def client(lab):
    return HlsClient(resolve={lab["domain"]: lab["frontend_address"]}, ca_file=lab["ca_cert"], timeout=5)


def test_a_destination_that_is_down_disturbs_neither_the_other_nor_the_hls_output(restreaming, receivers, client, lab):
    got = receivers["first"].wait_for(10, within_s=60)
    assert got >= 10, f"the first destination got {got:.1f}s of video"
    url = urllib.parse.urljoin(lab["player_url"], f"hls/{STREAM}.m3u8")
    [check] = client.streams_advance({url: False}, within_s=20)
    assert check, check.explain()
    # still going, while the second destination refused all along
    assert receivers["first"].wait_for(got + 5, within_s=20) >= got + 5
    assert receivers["second"].seconds() == 0


def test_a_destination_that_comes_up_is_tried_again_and_gets_the_stream(restreaming, receivers):
    receivers["second"].start()
    got = receivers["second"].wait_for(5, within_s=RETRIED_WITHIN_S + 5)
    assert got >= 5, f"the second destination got {got:.1f}s within {RETRIED_WITHIN_S}s of coming up"
    assert receivers["first"].process.poll() is None, "the first destination's stream was cut"


def test_an_audio_stream_is_served_as_audio_alone(restreaming, client, lab, tmp_path):
    """Its segments carry AAC packets and no others. nginx-rtmp writes every segment with one
    fixed MPEG-TS header (ngx_rtmp_mpegts.c), whose program table always lists an H.264 stream
    too: ffprobe names that stream, with not one packet in it."""
    playlist = client.media_playlist(urllib.parse.urljoin(lab["player_url"], f"hls/{RADIO}.m3u8"))
    assert playlist.segments and not playlist.is_master
    segment = tmp_path / "radio.ts"
    segment.write_bytes(client.get(playlist.segments[-1].uri))
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                            "stream=codec_type,codec_name,nb_read_packets", "-of", "json", str(segment)],
                           capture_output=True, text=True, timeout=30, check=True)
    packets = {(s["codec_type"], s["codec_name"]): int(s.get("nb_read_packets", "0").replace("N/A", "0"))
               for s in json.loads(probe.stdout)["streams"]}
    assert packets.get(("audio", "aac"), 0) > 0, packets
    assert not {kind: count for kind, count in packets.items() if kind[0] != "audio" and count}, packets


def test_chromium_plays_the_audio_stream_as_audio(restreaming, lab):
    with viewer(lab) as browser:
        assert browser.open(lab["player_url"] + f"?stream={RADIO}") == "Live"
        state = browser.wait_playing(min_advance_s=3, timeout=60)
        decoded = browser.driver.execute_script("return document.getElementById('video').webkitAudioDecodedByteCount")
        shown_as = browser.driver.execute_script("return document.getElementById('video').className")
    assert not state.failed
    assert (state.width, state.height) == (0, 0), "no picture"
    assert decoded > 0, "no audio decoded"
    assert shown_as == "audio"


def test_no_destination_key_is_readable_but_by_root(restreaming, destination_keys, ssh, machines):
    """After the second destination's refusals (ffmpeg's failure names the URL it writes to)."""
    found = secrets_found(ssh, machines, {f"the {name} destination's key": key for name, key in destination_keys.items()})
    assert not found, found
    # the control: the refusals were there to be searched, redacted
    journal = ssh(machines["backend"]["name"], f"sudo -n journalctl --no-pager -o cat -u livestream-stream@{STREAM}.2").stdout
    assert "<redacted>" in journal, journal[-2000:]
