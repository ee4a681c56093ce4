"""The HLS probe against HTTPS servers on 127.0.0.1 that trust only a throwaway CA:
playlists, whether a stream moves, and simulated viewers with their lateness."""

from __future__ import annotations

import os
import socket
import time

import pytest

from livestream_probes.certs import throwaway_ca
from livestream_probes.hls import (HlsClient, HlsError, parse_playlist, process_cpu_seconds, ramp_viewers, run_viewers,
                                   stat_cpu_ticks)
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
    live = SyntheticLive(segment_s=0.5)
    with https_server(tls, live.handler()) as live_port, https_server(tls, static_handler(tmp_path)) as static_port:
        moving = client.playlist_advances(f"https://{SITE}:{live_port}/live.m3u8", within_s=3)
        frozen = client.playlist_advances(f"https://{SITE}:{static_port}/frozen.m3u8", within_s=1)
        gone = client.playlist_advances(f"https://{SITE}:{static_port}/gone.m3u8", within_s=1)
    assert moving and moving.elapsed_s < 1.5 and moving.to_sequence > moving.from_sequence
    assert not frozen and frozen.polls >= 2 and not frozen.errors
    assert not gone and gone.errors and "HTTP 404" in gone.errors[0]


def test_new_segments_come_with_the_time_they_were_listed(tls, client):
    live = SyntheticLive(segment_s=0.5)
    with https_server(tls, live.handler()) as port:
        started = time.time()
        arrivals = client.new_segments(f"https://{SITE}:{port}/live.m3u8", count=2, timeout=3)
    assert [a.segment.sequence for a in arrivals] == [arrivals[0].segment.sequence, arrivals[0].segment.sequence + 1]
    assert started < arrivals[0].listed_at < arrivals[1].listed_at < time.time()
    assert 0.3 < arrivals[1].listed_at - arrivals[0].listed_at < 0.7, "half a second apart, as published"
    assert all(len(a.body) == 20_000 for a in arrivals)


def test_viewers_on_a_prompt_server_get_every_segment_on_time(tls, client):
    live = SyntheticLive(segment_s=1.0)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=5, duration_s=3.5, client=client)
    assert load.healthy, load.summary()
    assert all(report.segments >= 4 for report in load.reports), "three held back, then at least one new"
    assert load.duration_s < 5, "the crowd stops by itself"


def test_viewers_reconnect_when_the_server_drops_idle_connections(tls, client):
    live = SyntheticLive(segment_s=1.0, drop_idle_connections=True)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=2, duration_s=2.5, client=client)
    assert load.healthy, load.summary()


def test_segments_slower_than_the_stream_count_as_late(tls, client):
    live = SyntheticLive(segment_s=1.0, delay=lambda sequence, connections: 1.5)
    with https_server(tls, live.handler()) as port:
        load = run_viewers(f"https://{SITE}:{port}/live.m3u8", viewers=2, duration_s=4.5, client=client)
    summary = load.summary()
    assert not load.healthy and summary["late_segments"] >= 2, summary
    # each 1 s segment takes 1.5 s: from the second one on, every one is 0.5 s later than the last
    assert summary["worst_lateness_s"] >= 0.9, summary


def test_ramp_finds_the_most_viewers_the_server_keeps_up_with(tls, client):
    # a server that keeps up with three viewers at once and stalls beyond
    live = SyntheticLive(segment_s=1.0, delay=lambda sequence, connections: 3.0 if connections > 3 else 0.0)
    with https_server(tls, live.handler()) as port:
        best, runs = ramp_viewers(f"https://{SITE}:{port}/live.m3u8", client=client, start=1, limit=8,
                                  duration_s=2.5)
    assert best == 3, [run.summary() for run in runs]
    assert [run.viewers for run in runs] == [1, 2, 4, 3]


def test_cpu_sampler_counts_a_process_tree_or_a_name():
    with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as stat:
        own = stat.read()
    name = own[own.index("(") + 1:own.rindex(")")]
    assert stat_cpu_ticks(own, "not-" + name) == 0
    by_name, by_tree = process_cpu_seconds(name), process_cpu_seconds(root_pid=os.getppid())
    before = by_name(), by_tree()
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    assert by_name() - before[0] >= 0.2
    assert by_tree() - before[1] >= 0.2, "this process is a descendant of its parent"
    assert process_cpu_seconds(root_pid=2 ** 22 + 1)() == 0, "no such process, nothing counted"
