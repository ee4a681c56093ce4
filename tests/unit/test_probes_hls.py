"""The HLS probe against HTTPS servers on 127.0.0.1 that trust only a throwaway CA:
playlists, whether a stream moves, and simulated viewers with their lateness."""

from __future__ import annotations

import socket
import time

import pytest

from livestream_probes.certs import throwaway_ca
from livestream_probes.hls import HlsClient, HlsError, Ramp, parse_playlist, ramp_viewers, reload_after, run_viewers
from livestream_testing.probe_servers import SITE, SyntheticLive, https_server, static_handler

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=2928000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
test_720/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1528000,RESOLUTION=854x480,CODECS="avc1.64001e,mp4a.40.2"
test_480/index.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-TARGETDURATION:1
#EXTINF:1.001,
41.ts
#EXTINF:0.967,
42.ts
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("tls"), [SITE])


@pytest.fixture
def client(tls):
    return HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(tls.ca), timeout=3)


def test_playlists_parse_with_absolute_uris():
    master = parse_playlist(MASTER, "https://site/hls/test.m3u8")
    assert master.is_master
    assert [(v.uri, v.bandwidth, v.resolution) for v in master.variants] == [
        ("https://site/hls/test_720/index.m3u8", 2928000, "1280x720"),
        ("https://site/hls/test_480/index.m3u8", 1528000, "854x480")]
    media = parse_playlist(MEDIA, "https://site/hls/test_720/index.m3u8")
    assert (media.target_duration, media.media_sequence, media.ended) == (1.0, 41, False)
    assert [(s.uri, s.duration, s.sequence) for s in media.segments] == [
        ("https://site/hls/test_720/41.ts", 1.001, 41), ("https://site/hls/test_720/42.ts", 0.967, 42)]
    with pytest.raises(HlsError):
        parse_playlist("<html>", "https://site/")


def test_viewers_reload_the_playlist_as_hls_js_does():
    one_second = parse_playlist(MEDIA, "https://site/hls/test.m3u8")
    # the newest segment (0.967 s) is shorter than the target duration (1 s): reload after it
    assert reload_after(one_second, fresh=True) == 0.967
    half = parse_playlist(MEDIA.replace("#EXTINF:0.967,", "#EXTINF:0.500,"), "https://site/hls/test.m3u8")
    assert reload_after(half, fresh=True) == 0.5
    assert reload_after(half, fresh=False) == 0.5  # nothing new: half the target duration
    longer = parse_playlist(MEDIA.replace("TARGETDURATION:1", "TARGETDURATION:2").replace("0.967", "2.000"),
                            "https://site/hls/test.m3u8")
    assert reload_after(longer, fresh=True) == 2.0
    assert reload_after(longer, fresh=False) == 1.0


def test_a_discontinuity_marks_the_segment_after_it():
    # what nginx-rtmp writes when a publisher comes back after a drop
    text = MEDIA.replace("42.ts", "42.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n43.ts\n#EXTINF:1.000,\n44.ts")
    media = parse_playlist(text, "https://site/hls/test.m3u8")
    assert [(s.sequence, s.discontinuity) for s in media.segments] == [(41, False), (42, False), (43, True), (44, False)]


def test_a_refused_connection_is_an_hls_error_and_counted_while_waiting():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HlsClient(resolve={SITE: "127.0.0.1"}, timeout=1)
    url = f"https://{SITE}:{port}/live.m3u8"
    with pytest.raises(HlsError, match="refused"):
        client.get(url)
    waited = client.playlist_advances(url, within_s=0.5)
    assert not waited and waited.errors and "refused" in waited.errors[0]


def test_tls_is_verified_against_the_given_ca(tls, tmp_path):
    (tmp_path / "live.m3u8").write_text(MEDIA)
    other = throwaway_ca(tmp_path / "other", [SITE])
    with https_server(tls, static_handler(tmp_path)) as port:
        url = f"https://{SITE}:{port}/live.m3u8"
        trusting = HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(tls.ca))
        assert trusting.media_playlist(url).media_sequence == 41
        with pytest.raises(HlsError, match="CERTIFICATE_VERIFY_FAILED"):
            HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(other.ca)).get(url)


def test_playlist_advances_on_a_live_stream_and_not_on_a_frozen_one(tls, client, tmp_path):
    (tmp_path / "frozen.m3u8").write_text(MEDIA)
    live = SyntheticLive(segment_s=0.2)
    with https_server(tls, live.handler()) as live_port, https_server(tls, static_handler(tmp_path)) as static_port:
        moving = client.playlist_advances(f"https://{SITE}:{live_port}/live.m3u8", within_s=3)
        frozen = client.playlist_advances(f"https://{SITE}:{static_port}/frozen.m3u8", within_s=0.6)
        gone = client.playlist_advances(f"https://{SITE}:{static_port}/gone.m3u8", within_s=0.3)
    # a segment every 0.2 s, polled every 0.25 s: seen long before the 3 s are up
    assert moving and moving.elapsed_s < 1 and moving.to_sequence > moving.from_sequence
    assert not frozen and frozen.polls >= 2 and frozen.elapsed_s >= 0.6 and not frozen.errors
    assert not gone and gone.errors and "HTTP 404" in gone.errors[0]


def test_new_segments_come_with_the_time_they_were_listed(tls, client):
    live = SyntheticLive(segment_s=0.25)
    with https_server(tls, live.handler()) as port:
        started = time.time()
        arrivals = client.new_segments(f"https://{SITE}:{port}/live.m3u8", count=2, timeout=3, poll_s=0.05)
    assert [a.segment.sequence for a in arrivals] == [arrivals[0].segment.sequence, arrivals[0].segment.sequence + 1]
    assert started < arrivals[0].listed_at < arrivals[1].listed_at < time.time()
    assert 0.15 < arrivals[1].listed_at - arrivals[0].listed_at < 0.35, "a quarter of a second apart, as published"
    assert all(len(a.body) == 20_000 for a in arrivals)


def test_viewers_on_a_prompt_server_get_every_segment_on_time(tls, client):
    live = SyntheticLive(segment_s=0.25)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=5, duration_s=1.25, client=client)
    assert load.healthy, load.summary()
    assert all(report.segments >= 5 for report in load.reports), "three held back, then at least two new"
    assert load.duration_s < 1.75, "the crowd stops by itself"


def test_viewers_reconnect_when_the_server_drops_idle_connections(tls, client):
    live = SyntheticLive(segment_s=0.25, drop_idle_connections=True)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=2, duration_s=1.0, client=client)
    assert load.healthy, load.summary()
    assert live.opened > load.segments, "a connection of its own for every segment and playlist"


def test_viewers_send_the_clients_headers_and_count_their_requests(tls):
    """A CDN's origin answers only requests with the CDN's header: the viewers send the
    client's headers with every request, and count what they asked for."""
    live = SyntheticLive(segment_s=0.25, required_header=("X-Origin", "secret"))
    with https_server(tls, live.handler()) as port:
        url = f"https://{SITE}:{port}/live.m3u8"
        with pytest.raises(HlsError, match="HTTP 403"):
            HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(tls.ca), timeout=3).get(url)
        client = HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(tls.ca), timeout=3, headers={"X-Origin": "secret"})
        assert client.playlist(url).segments
        load = run_viewers(url, viewers=3, duration_s=1.0, client=client)
    assert load.healthy, load.summary()
    summary = load.summary()
    assert summary["segment_requests"] == load.segments
    # every request the viewers counted was answered (plus the client's own playlist above)
    assert (summary["playlist_requests"] + 1, summary["segment_requests"]) == (live.answered["playlist"], live.answered["segment"])


def test_segments_slower_than_the_stream_count_as_late(tls, client):
    live = SyntheticLive(segment_s=0.25, delay=lambda sequence, connections: 0.5)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=2, duration_s=1.5, client=client)
    summary = load.summary()
    assert not load.healthy and summary["late_segments"] >= 2, summary
    # each 0.25 s segment takes 0.5 s: every one is 0.25 s later than the last, the third 0.5 s late
    assert summary["worst_lateness_s"] >= 0.45, summary


def test_a_first_segment_slower_than_a_target_duration_counts_as_late(tls, client):
    # only the first segment asked for is slow (0.45 s, more than the 0.25 s target duration);
    # the rest are needed from when it arrived, and come in time
    asked: list[int] = []

    def delay(sequence: int, connections: int) -> float:
        asked.append(sequence)
        return 0.45 if len(asked) == 1 else 0.0

    live = SyntheticLive(segment_s=0.25, delay=delay)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=1, duration_s=0.75, client=client)
    summary = load.summary()
    assert summary["late_segments"] >= 1 and summary["worst_lateness_s"] >= 0.15, summary


def test_ramp_finds_the_most_viewers_the_server_keeps_up_with(tls, client):
    # a server that keeps up with three viewers at once and stalls beyond
    live = SyntheticLive(segment_s=0.25, delay=lambda sequence, connections: 0.75 if connections > 3 else 0.0)
    loads = []

    def run(count: int) -> bool:
        loads.append(run_viewers(f"https://{SITE}:{port}/live.m3u8", count, 0.75, client=client))
        return loads[-1].healthy

    ramp = Ramp(run, start=1, limit=8)
    with https_server(tls, live.handler()) as port:
        assert ramp_viewers(ramp)
    assert ramp.best == 3 and ramp.bad == 4, [load.summary() for load in loads]
    assert [load.viewers for load in loads] == [1, 2, 4, 3]


def scripted(capacity: int, hiccups: dict[int, int] | None = None, log: list | None = None, name: str = ""):
    """A run that is healthy up to ``capacity`` viewers, except for the first ``hiccups[count]``
    runs at a count; each run is logged as (name, count)."""
    hiccups = dict(hiccups or {})

    def run(count: int) -> bool:
        if log is not None:
            log.append((name, count))
        if hiccups.get(count):
            hiccups[count] -= 1
            return False
        return count <= capacity

    return run


def test_ramp_doubles_then_bisects_to_a_sixteenth():
    ramp = Ramp(scripted(700), start=60, limit=960)
    assert ramp_viewers(ramp)
    assert [count for count, _healthy in ramp.runs] == [60, 120, 240, 480, 960, 720, 600, 660, 690]
    assert (ramp.best, ramp.bad) == (690, 720), "within 690 // 16 of the first bad count"
    assert ramp.done
    topped = Ramp(scripted(10_000), start=60, limit=960)
    assert ramp_viewers(topped) and (topped.best, topped.bad) == (960, None), "never past the limit"
    failed = Ramp(scripted(10), start=60)
    assert ramp_viewers(failed) and failed.best == 0 and failed.runs == [(60, False)]


def test_a_count_fails_only_when_every_try_at_it_fails():
    once = Ramp(scripted(100, hiccups={4: 1}), start=1, limit=8, tries=2)
    assert ramp_viewers(once) and once.best == 8, once.runs
    assert once.runs[2:4] == [(4, False), (4, True)], "one hiccup, then a good run: 4 is not the limit"
    twice = Ramp(scripted(100, hiccups={4: 2}), start=1, limit=8, tries=2)
    assert ramp_viewers(twice) and (twice.best, twice.bad) == (3, 4), twice.runs


def test_ramps_run_in_lockstep_taking_turns_and_stop_at_the_deadline():
    log: list = []
    ours, bare = Ramp(scripted(3, log=log, name="ours")), Ramp(scripted(5, log=log, name="bare"))
    assert ramp_viewers(ours, bare)
    assert log[:6] == [("ours", 1), ("bare", 1), ("bare", 2), ("ours", 2), ("ours", 4), ("bare", 4)]
    assert (ours.best, bare.best) == (3, 5)
    late = Ramp(scripted(100))
    assert not ramp_viewers(late, deadline=time.monotonic() + 1, run_s=5), "no run could end in time"
    assert not late.runs and not late.done
