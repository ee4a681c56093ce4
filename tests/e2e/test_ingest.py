"""Going live from a streamer's own encoder: ffmpeg on the lab's internet publishes the
default encoder stream "studio" over RTMPS (the frontend's certificate verified against the
lab's ACME root only, as a streamer's machine trusts Let's Encrypt), the backend pulls it
over the VPC and transcodes it into the ABR ladder, and Chromium plays the ladder over HTTPS.
What must not publish does not: no key, a wrong key, another stream's name, plain RTMP,
an address outside the ingest CIDRs. An encoder that stops and comes back goes on without
Ansible. Then, after those failures, no key is anywhere a user but root could read it. A key
rotated by one command drops its old publisher and leaves the other streams alone; and OBS
Studio itself, headless, goes live with what a streamer types into it."""

from __future__ import annotations

import math
import os
import shlex
import statistics
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from livestream_lab import streams as lab_streams
from livestream_probes import obs as obs_probe
from livestream_probes.encoder import Encoder, Encoding, publish
from livestream_probes.hls import HlsClient, HlsError, new_session
from livestream_probes.net import OPEN, SILENT, tcp_state
from livestream_testing.lab import INGEST_STREAM, STREAM, stream_key
from livestream_testing.playbook import Runner
from livestream_testing.service import secrets_found, viewer

pytestmark = pytest.mark.lab

SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "e2e"
# the encoder's own keyframe interval, longer than a fragment: in transcode mode the
# backend's keyframes decide the fragments, not the encoder's
ENCODING = Encoding(height=720, fps=30, keyframe_s=4)
# long enough for every test of the live stream; it stops by itself
LIVE_SECONDS = 240
# the ladder's first fragments, after the backend's waiting pull gets the encoder's stream
LIVE_WITHIN_S = 60
# how much of the stream is watched after an encoder comes back
WATCHED_S = 8
# the old key's encoder publishes while rotate_key runs, until the frontend drops it
ROTATION_ENCODER_S = 300
# in the frontend's nginx's place: its RTMP port (the backend's) answers, and closes every connection
NOT_RTMP = """import socket
listener = socket.create_server(("", 1935))
while True:
    listener.accept()[0].close()
"""
# a refused publish ends within seconds; an accepted one would run this long
REFUSED_SECONDS = 8


@pytest.fixture(scope="module")
def ingest(lab_config, lab):
    """The default encoder stream, as a streamer types it into OBS: server and stream key."""
    [studio] = [stream for stream in lab_streams.encoder_streams(lab_config) if stream["name"] == INGEST_STREAM]
    return studio


@pytest.fixture(scope="module")
def client(lab):
    return HlsClient(resolve={lab["domain"]: lab["frontend_address"]}, ca_file=lab["ca_cert"], timeout=5)


@pytest.fixture(scope="module")
def master_url(lab):
    return urllib.parse.urljoin(lab["player_url"], f"hls/{INGEST_STREAM}.m3u8")


@pytest.fixture(scope="module")
def live(lab, ingest, client, master_url):
    """The encoder publishing over RTMPS, for the module; every rendition advancing."""
    encoder = Encoder(f"{ingest['server']}/{ingest['stream_key']}", seconds=LIVE_SECONDS, ca_file=lab["ca_cert"],
                      encoding=ENCODING).start()
    try:
        checks = client.streams_advance({master_url: True}, within_s=LIVE_WITHIN_S)
        failed = [check.explain() for check in checks if not check]
        assert not failed, f"{'; '.join(failed)}; encoder running: {encoder.running()}"
        yield encoder
    finally:
        result = encoder.stop()
        assert result.returncode in (0, 255) or "Exiting normally" in result.stderr, result.stderr[-2000:]


def test_an_encoder_publishes_over_rtmps_and_the_backend_makes_the_ladder(live, client, master_url, lab_config):
    master = client.playlist(master_url)
    heights = sorted({int(variant.resolution.split("x")[1]) for variant in master.variants}, reverse=True)
    assert heights == [1080, 720, 480], master.variants
    assert live.running()


def test_chromium_plays_the_encoders_ladder_over_https(live, lab):
    with viewer(lab) as browser:
        assert browser.open(lab["player_url"] + f"?stream={INGEST_STREAM}") == "Live"
        state = browser.wait_playing(min_advance_s=3, timeout=60)
        levels = browser.driver.execute_script("return hls ? hls.levels.map((level) => level.height) : null")
        screenshot = browser.screenshot(SCREENSHOTS / "ingest.png")
    print(f"ingest playback screenshot: {screenshot}")
    assert not state.failed
    assert sorted(levels, reverse=True) == [1080, 720, 480]
    assert state.height in (1080, 720, 480)


def _refused(result) -> bool:
    """ffmpeg failed within the refusal's time (an accepted publish runs REFUSED_SECONDS)."""
    return result.returncode not in (0, 255)


@pytest.mark.parametrize("case", ["no key", "a wrong key", "another stream's name", "plain RTMP on the RTMPS port"])
def test_what_must_not_publish_is_refused(case, live, lab, lab_config, ingest):
    server, key = ingest["server"], stream_key(lab_config, INGEST_STREAM)
    url = {
        "no key": f"{server}/{INGEST_STREAM}",
        "a wrong key": f"{server}/{INGEST_STREAM}?key=not-{key}",
        # the test pattern is the backend's own: no encoder may publish it, whatever its key
        "another stream's name": f"{server}/{STREAM}?key={stream_key(lab_config, STREAM)}",
        "plain RTMP on the RTMPS port": f"{server.replace('rtmps://', 'rtmp://')}/{INGEST_STREAM}?key={key}",
    }[case]
    started = time.monotonic()
    result = publish(url, seconds=REFUSED_SECONDS, ca_file=lab["ca_cert"], encoding=Encoding(height=180, fps=10),
                     timeout=REFUSED_SECONDS + 20)
    assert _refused(result), f"{case}: published for {time.monotonic() - started:.0f}s: {result.stderr[-500:]}"
    # refused, not cut short for want of a connection: the same encoder publishes "studio" meanwhile
    assert live.running()


def test_plain_rtmp_and_outsiders_do_not_reach_the_frontend(live, lab, lab_config, machines):
    frontend = machines["frontend"]["public"]
    port = int(urllib.parse.urlsplit(lab_streams.encoder_streams(lab_config)[0]["server"]).port)
    assert tcp_state(frontend, 1935) == SILENT, "plain RTMP is the backend's only"
    assert tcp_state(frontend, port, source=str(lab_config.outsider_address)) == SILENT, "outside the ingest CIDRs"
    # the control: from the admin address, inside livestream_ingest_cidrs by default
    assert tcp_state(frontend, port, source=str(lab_config.internet_address)) == OPEN


def test_an_encoder_that_stops_and_comes_back_goes_on_without_ansible(live, lab, ingest, client, master_url):
    """The encoder comes back at once, its timestamps starting again while the backend's pull
    goes on (it has published for a minute and more by now): the ladder goes on, fragment
    after fragment of the usual length, in real time, not after as long a stall as the first
    publication lasted (ffmpeg's plain flv reader passed the timestamps on going backwards: a
    copy's clamped, a ladder's frames dropped, until they caught up)."""
    rendition = client.playlist(master_url).variants[-1].uri
    # the fragment length (the target duration is a whole number of seconds, above it)
    fragment = statistics.median(segment.duration for segment in client.media_playlist(rendition).segments)
    live.stop()
    stopped = time.monotonic()
    with Encoder(f"{ingest['server']}/{ingest['stream_key']}", seconds=90, ca_file=lab["ca_cert"],
                 encoding=ENCODING) as again:
        # the fragments that appear from here on; the first one or two may still be the
        # stopped encoder's last frames
        # 8 s of the stream, whatever the fragment length
        count = math.ceil(WATCHED_S / fragment)
        arrivals = client.new_segments(rendition, count=count, timeout=LIVE_WITHIN_S + WATCHED_S, poll_s=0.2)
        assert len(arrivals) == count, f"{len(arrivals)} fragments in {LIVE_WITHIN_S + WATCHED_S:.0f} s after the encoder came back"
        timeline = [(round(arrival.listed_at - arrivals[0].listed_at, 2), arrival.segment.duration)
                    for arrival in arrivals]
        assert all(fragment / 2 <= arrival.segment.duration <= 2 * fragment for arrival in arrivals), timeline
        # listed in real time: the second half (4 s) as far apart as it is long, give or take a
        # poll; a burst as the stream starts again is not the stall this is about (once, on a
        # loaded machine: 5 fragments of 0.5 s listed within 1.3 s)
        last = arrivals[count // 2 - 1:]
        spread = last[-1].listed_at - last[0].listed_at
        assert spread >= 0.6 * sum(arrival.segment.duration for arrival in last[1:]), (spread, timeline)
        assert again.running()
    print(f"the stream went on: {count} fragments {arrivals[-1].listed_at - (time.time() - (time.monotonic() - stopped)):.1f}s "
          f"after the encoder stopped; listed at (s, duration): {timeline}")


def test_no_key_is_readable_but_by_root_after_the_failures(live, lab_config, ssh, machines):
    """Every key of every stream, searched after the refusals and the encoder's stop above
    (which ended the backend's pull and push) and the frontend's nginx replaced, until the
    backend's pushes fail to reconnect, by a listener on its RTMP port that closes every
    connection (the backend's units wait for the port to answer; then ffmpeg's failure to open
    its output names the URL, key included; a push merely broken does not, since ffmpeg 7),
    then started again: in what a user who is not root sees of the process lists, and in every
    journal and log, of every machine."""
    frontend, backend = machines["frontend"]["name"], machines["backend"]["name"]
    since = int(time.time())  # the lab's machines share this host's clock
    stopped = ssh(frontend, f"sudo -n systemctl stop nginx && sudo -n systemd-run --unit=not-rtmp python3 -c {shlex.quote(NOT_RTMP)}")
    assert stopped.returncode == 0, stopped.stderr
    journal = ""
    try:
        # systemd starts a failed push again every 2 s: one that finds no RTMP there says so
        deadline = time.monotonic() + 30
        while "<redacted>" not in journal and time.monotonic() < deadline:
            time.sleep(1)
            journal = ssh(backend, f"sudo -n journalctl --no-pager -o cat --since @{since} -u 'livestream-stream@*'").stdout
    finally:
        started = ssh(frontend, "sudo -n systemctl stop not-rtmp; sudo -n systemctl start nginx")
    assert started.returncode == 0, started.stderr
    # the control: the backend's journal holds ffmpeg's failure, its key redacted
    assert "<redacted>" in journal, journal[-2000:]
    keys = {name: stream_key(lab_config, name) for name in (STREAM, INGEST_STREAM)}
    found = secrets_found(ssh, machines, {f"{name}'s key": key for name, key in keys.items()})
    assert not found, found
    # the other control: root does see the test pattern's key on ffmpeg's command line, so the
    # search would have found it
    root_ps = ssh(backend, "sudo -n ps -eo args")
    assert keys[STREAM] in root_ps.stdout


def test_after_a_certificate_renewal_an_encoder_that_reconnects_plays_again(
        lab_config, ssh, machines, ingest, client, master_url):
    """certbot's deploy hook reloads nginx after a renewal. nginx-rtmp keeps a stream's
    publisher and its players in one worker, and a plain reload leaves the backend's pull
    waiting in a worker of the old configuration while an encoder that reconnects reaches a
    new one: the hook ends the old workers, so that both meet again in the new one."""
    frontend = machines["frontend"]["name"]
    reloaded = ssh(frontend, "sudo -n /etc/letsencrypt/renewal-hooks/deploy/livestream-reload-nginx")
    assert reloaded.returncode == 0, reloaded.stderr
    workers = ssh(frontend, "ps -eo args").stdout
    assert "shutting down" not in workers, workers
    url = f"{ingest['server']}/{INGEST_STREAM}?key={stream_key(lab_config, INGEST_STREAM)}"
    with Encoder(url, seconds=120, ca_file=str(lab_config.ca_cert), encoding=ENCODING) as encoder:
        checks = client.streams_advance({master_url: True}, within_s=LIVE_WITHIN_S)
        failed = [check.explain() for check in checks if not check]
        assert not failed, f"{'; '.join(failed)}; encoder running: {encoder.running()}"


class Cuts:
    """Polls a media playlist in the background, from entering to leaving, and keeps every
    new publishing session it sees (module_utils/hls.py's ``new_session``): a stream that
    was cut and came back."""

    def __init__(self, client: HlsClient, url: str, poll_s: float = 0.5):
        self.client, self.url, self.poll_s = client, url, poll_s
        self.seen: list[str] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        reference = self.client.media_playlist(self.url)
        while not self._stop.wait(self.poll_s):
            try:
                current = self.client.media_playlist(self.url)
            except HlsError as error:
                self.seen.append(f"unreadable: {error}")
                continue
            self.polls += 1
            if new_session(reference, current):
                self.seen.append(current.short())
            reference = current

    def __enter__(self) -> Cuts:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(10)


def test_rotating_a_key_takes_one_command_and_leaves_the_other_streams_alone(
        lab, lab_config, ingest, client, master_url, tmp_path):
    """livestream.aws.rotate_key for "studio", while its encoder publishes with the old key and
    the test pattern plays: the encoder is dropped and refused, the new key publishes, and the
    test pattern's playlist goes on in one session (no discontinuity, no gap)."""
    old_key = stream_key(lab_config, INGEST_STREAM)
    pattern = urllib.parse.urljoin(lab["player_url"], f"hls/{STREAM}.m3u8")
    # longer than rotate_key takes on a loaded machine (the keys alone); it stops by itself
    with Encoder(f"{ingest['server']}/{ingest['stream_key']}", seconds=ROTATION_ENCODER_S, ca_file=lab["ca_cert"],
                 encoding=ENCODING) as old:
        [playing] = client.streams_advance({master_url: True}, within_s=LIVE_WITHIN_S)
        assert playing, playing.explain()
        with Cuts(client, pattern) as cuts:
            result = Runner(tmp_path, env=dict(os.environ)).playbook(
                "livestream.aws.rotate_key", "-e", f"livestream_rotate_stream={INGEST_STREAM}",
                inventory=lab["inventory"])
        assert result.returncode == 0, result.stdout[-3000:]
        new_key = stream_key(lab_config, INGEST_STREAM)
        assert new_key != old_key and old_key not in result.stdout and new_key not in result.stdout
        # the publisher with the old key is dropped (ffmpeg ends on its own, failing)
        ended = old.result(timeout=30)
        assert ended.returncode not in (0, 255), "the old key's publisher was not dropped"
    # one session all along: the test pattern was never cut
    assert cuts.polls > 20 and not cuts.seen, cuts.seen
    server = ingest["server"]
    refused = publish(f"{server}/{INGEST_STREAM}?key={old_key}", seconds=REFUSED_SECONDS, ca_file=lab["ca_cert"],
                      encoding=Encoding(height=180, fps=10))
    assert _refused(refused), "the old key still publishes"
    with Encoder(f"{server}/{INGEST_STREAM}?key={new_key}", seconds=120, ca_file=lab["ca_cert"], encoding=ENCODING):
        [again] = client.streams_advance({master_url: True}, within_s=LIVE_WITHIN_S)
        assert again, again.explain()


def test_obs_studio_goes_live_with_what_a_streamer_types_into_it(
        lab, lab_config, ingest, client, master_url, tmp_path):
    """The second client: Debian's OBS Studio itself, headless, given the server and stream key
    a streamer types into Settings > Stream (the key as rotated above), trusting the lab's ACME
    root alone: the backend's ladder advances from what OBS sends."""
    cannot = obs_probe.available()
    if cannot:
        pytest.fail(f"OBS Studio cannot run here: {cannot} (run `make setup-lab`)")
    config = obs_probe.write_config(tmp_path / "obs", server=ingest["server"],
                                    key=f"{INGEST_STREAM}?key={stream_key(lab_config, INGEST_STREAM)}",
                                    encoding=Encoding(height=360, fps=30, keyframe_s=2, video_kbps=1000))
    with obs_probe.Obs(config, ca_file=lab["ca_cert"], resolve={lab["domain"]: lab["frontend_address"]}) as obs:
        live_after_s = obs.wait_streaming(timeout=60)
        # nothing else publishes "studio" now (every encoder above has stopped): the segments
        # that appear from here on are made of what OBS sends
        checks = client.streams_advance({master_url: True}, within_s=LIVE_WITHIN_S)
        failed = [check.explain() for check in checks if not check]
        assert not failed, f"{'; '.join(failed)}\n{obs.log_tail()}"
        assert obs.streaming(), obs.log_tail()
    print(f"OBS Studio was live {live_after_s:.1f}s after it started")
