"""module_utils/hls.py, the one home of "the stream plays": the parser, the decisions
between two readings, and the watch and the check of a set of streams, on a fake clock
(no sleeps, no network)."""

from __future__ import annotations

import pytest

from ansible_collections.livestream.aws.plugins.module_utils.hls import (
    HlsError, Playlist, advanced, check_streams, fresh, kind_error, new_segments, new_session, parse_playlist, watch)

BASE = "https://live.example.test/hls/"


def media(first: int, last: int, *, discontinuity_at: int | None = None, prefix: str = "test") -> str:
    """A media playlist listing segments ``first``..``last`` (none when last < first)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    for sequence in range(first, last + 1):
        if sequence == discontinuity_at:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += ["#EXTINF:2.000,", f"{prefix}-{sequence}.ts"]
    return "\n".join(lines) + "\n"


MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=5128000,RESOLUTION=1920x1080,CODECS="avc1.640028,mp4a.40.2"
test_1080/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2928000,RESOLUTION=1280x720
test_720/index.m3u8
"""


def read(text: str, url: str = BASE + "test.m3u8") -> Playlist:
    return parse_playlist(text, url)


class Clock:
    """A fake monotonic clock that sleeping moves on."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Server:
    """Playlists by URL, each a function of the fake clock's seconds since the start (a
    str, or an exception to raise)."""

    def __init__(self, clock: Clock, playlists: dict):
        self.clock = clock
        self.start = clock.now
        self.playlists = playlists
        self.requests: list[str] = []

    def fetch(self, url: str) -> Playlist:
        self.requests.append(url)
        if url not in self.playlists:
            raise HlsError(f"GET {url}: HTTP 404")
        answer = self.playlists[url](self.clock.now - self.start)
        if isinstance(answer, Exception):
            raise answer
        return parse_playlist(answer, url)


def live(segment_s: float = 2.0, window: int = 3, *, published: int = 5, prefix: str = "test"):
    """A live media playlist: a new segment every ``segment_s`` seconds."""
    def playlist(elapsed: float) -> str:
        last = published + int(elapsed // segment_s)
        return media(max(0, last - window + 1), last, prefix=prefix)
    return playlist


def frozen(text: str):
    return lambda elapsed: text


# --- the parser ----------------------------------------------------------------------

def test_a_media_playlist_parses_with_absolute_uris_and_sequences():
    playlist = read(media(41, 43, discontinuity_at=43))
    assert not playlist.is_master
    assert playlist.media_sequence == 41 and playlist.target_duration == 2
    assert [segment.sequence for segment in playlist.segments] == [41, 42, 43]
    assert playlist.segments[0].uri == BASE + "test-41.ts"
    assert [segment.discontinuity for segment in playlist.segments] == [False, False, True]
    assert (playlist.last_sequence, playlist.last_uri) == (43, BASE + "test-43.ts")
    assert playlist.short() == "seq 41: test-41.ts test-42.ts |test-43.ts"


def test_a_master_playlist_lists_its_renditions_relative_to_itself():
    playlist = read(MASTER)
    assert playlist.is_master and not playlist.segments and playlist.last_sequence is None
    assert [variant.uri for variant in playlist.variants] == [BASE + "test_1080/index.m3u8", BASE + "test_720/index.m3u8"]
    assert playlist.variants[0].bandwidth == 5128000 and playlist.variants[0].resolution == "1920x1080"


@pytest.mark.parametrize("text", ["", "<html>404</html>", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n"])
def test_what_is_not_a_playlist_is_an_hls_error(text):
    with pytest.raises(HlsError, match="test.m3u8"):
        read(text)


# --- the decisions -------------------------------------------------------------------

def test_advanced_means_a_segment_the_reference_does_not_list():
    before = read(media(0, 2))
    assert not advanced(before, read(media(0, 2)))
    # the playlist still filling up: the media sequence stays, a segment is added
    assert advanced(before, read(media(0, 3)))
    assert [segment.sequence for segment in new_segments(before, read(media(1, 4)))] == [3, 4]
    # a publisher numbering from zero again is new too
    assert advanced(read(media(40, 42)), read(media(0, 0)))


def test_a_new_session_starts_at_a_discontinuity_or_a_restarted_numbering():
    before = read(media(10, 12))
    # the fragment nginx closes when the old publisher drops is new, but not a new session
    assert advanced(before, read(media(10, 13))) and not new_session(before, read(media(10, 13)))
    assert new_session(before, read(media(11, 14, discontinuity_at=14)))
    # a discontinuity the reference already listed does not count
    assert not new_session(read(media(10, 12, discontinuity_at=11)), read(media(10, 12, discontinuity_at=11)))
    assert new_session(before, read(media(0, 1)))


def test_fresh_means_only_segments_published_after_the_reference():
    before = read(media(10, 12))
    assert not fresh(before, read(media(12, 14)))
    assert fresh(before, read(media(13, 15)))
    assert not fresh(before, read(media(13, 15)), at_least=4)
    assert not fresh(before, read(media(0, -1)))  # empty


def test_the_kind_of_playlist_is_master_exactly_when_the_stream_has_variants():
    assert kind_error(read(MASTER), True) is None
    assert kind_error(read(media(0, 1)), False) is None
    assert "a media playlist, where the stream has variants" in kind_error(read(media(0, 1)), True)
    assert "a master playlist, where the stream has no variants" in kind_error(read(MASTER), False)
    assert "no segment yet" in kind_error(read(media(0, -1)), False)
    assert kind_error(read(MASTER), None) is None and kind_error(read(media(0, 1)), None) is None


# --- watching ------------------------------------------------------------------------

def test_a_watch_ends_at_the_first_new_segment_with_short_polls():
    clock = Clock()
    server = Server(clock, {BASE + "test.m3u8": live(segment_s=2.0)})
    [seen] = watch(server.fetch, [BASE + "test.m3u8"], within_s=10, poll_s=0.25, clock=clock, sleep=clock.sleep)
    assert seen and seen.from_sequence == 5 and seen.to_sequence == 6
    assert 2.0 <= seen.elapsed_s <= 2.25 and set(clock.slept) == {0.25}
    assert [segment.sequence for segment in seen.new] == [6]
    assert "advanced from sequence 5 to 6" in seen.explain()


def test_a_stale_playlist_fails_at_the_deadline_saying_so():
    clock = Clock()
    server = Server(clock, {BASE + "test.m3u8": frozen(media(3, 5))})
    [seen] = watch(server.fetch, [BASE + "test.m3u8"], within_s=3, poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert not seen and seen.polls == 7 and not seen.errors
    assert seen.elapsed_s == pytest.approx(3.0) and seen.to_sequence == 5
    assert seen.explain().startswith("stale: no new segment in 3.0s and 7 playlists (still at sequence 5)")


def test_failed_fetches_are_recorded_and_polling_goes_on():
    clock = Clock()
    answers = live(segment_s=1.0)

    def flaky(elapsed: float):
        return HlsError("GET x: HTTP 404") if elapsed < 1.6 else answers(elapsed)

    server = Server(clock, {BASE + "test.m3u8": flaky})
    [seen] = watch(server.fetch, [BASE + "test.m3u8"], within_s=5, poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert seen and len(seen.errors) == 4 and seen.errors[0] == "0.0s GET x: HTTP 404"

    never = Server(clock, {})
    [seen] = watch(never.fetch, [BASE + "gone.m3u8"], within_s=1, poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert not seen and seen.last is None
    assert seen.explain() == f"no answer in 1.0s (3 failed fetches, the last: GET {BASE}gone.m3u8: HTTP 404)"


def test_a_reference_read_before_counts_and_a_decision_after_the_deadline_does_not():
    clock = Clock()
    url = BASE + "test.m3u8"
    reference = read(media(3, 5), url)
    server = Server(clock, {url: frozen(media(4, 6, discontinuity_at=6))})
    [seen] = watch(server.fetch, [url], within_s=5, until=new_session, since={url: reference},
                   clock=clock, sleep=clock.sleep)
    assert seen and seen.polls == 1 and seen.from_sequence == 5

    # started long ago (before a fault): the deadline has passed when the stream shows up
    [late] = watch(server.fetch, [url], within_s=5, since={url: reference}, started=clock.now - 6,
                   clock=clock, sleep=clock.sleep)
    assert not late and late.polls == 1


def test_several_playlists_are_watched_together_within_one_deadline():
    clock = Clock()
    urls = [BASE + "a.m3u8", BASE + "b.m3u8"]
    server = Server(clock, {urls[0]: live(segment_s=1.0, prefix="a"), urls[1]: live(segment_s=3.0, prefix="b")})
    first, second = watch(server.fetch, urls, within_s=10, poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert first and second and first.elapsed_s == pytest.approx(1.0) and second.elapsed_s == pytest.approx(3.0)
    # a playlist that advanced is not read again
    assert server.requests.count(urls[0]) == 3 and server.requests.count(urls[1]) == 7


# --- the check of a set of streams ---------------------------------------------------

def test_every_rendition_of_a_master_playlist_must_advance():
    clock = Clock()
    master, copy = BASE + "test.m3u8", BASE + "other.m3u8"
    server = Server(clock, {master: frozen(MASTER), BASE + "test_1080/index.m3u8": live(prefix="a"),
                            BASE + "test_720/index.m3u8": live(prefix="b"), copy: live(prefix="c")})
    checks = check_streams(server.fetch, {master: True, copy: False}, within_s=10, clock=clock, sleep=clock.sleep)
    assert all(checks) and [check.url for check in checks] == [master, copy]
    assert [watched.url for watched in checks[0].renditions] == [BASE + "test_1080/index.m3u8",
                                                                 BASE + "test_720/index.m3u8"]
    assert [watched.url for watched in checks[1].renditions] == [copy]
    assert all(watched.to_sequence == 6 for check in checks for watched in check.renditions)


def test_a_frozen_rendition_fails_its_stream_and_is_named():
    clock = Clock()
    master = BASE + "test.m3u8"
    server = Server(clock, {master: frozen(MASTER), BASE + "test_1080/index.m3u8": live(prefix="a"),
                            BASE + "test_720/index.m3u8": frozen(media(0, 2, prefix="b"))})
    [check] = check_streams(server.fetch, {master: True}, within_s=6, clock=clock, sleep=clock.sleep)
    assert not check and check.renditions[0] and not check.renditions[1]
    assert check.explain().startswith(f"rendition {BASE}test_720/index.m3u8: stale: no new segment in 6.0s")
    assert clock.now - 1000.0 == pytest.approx(6.0)


def test_a_playlist_left_by_the_previous_configuration_is_waited_out():
    """A stream switched from copy to the ladder: the old media playlist is served until
    the ladder's first fragment replaces it with the master playlist."""
    clock = Clock()
    master = BASE + "test.m3u8"
    left = live()

    def switching(elapsed: float) -> str:
        return left(elapsed) if elapsed < 4 else MASTER

    server = Server(clock, {master: switching, BASE + "test_1080/index.m3u8": live(prefix="a"),
                            BASE + "test_720/index.m3u8": live(prefix="b")})
    [check] = check_streams(server.fetch, {master: True}, within_s=20, clock=clock, sleep=clock.sleep)
    assert check and check.playlist.elapsed_s == pytest.approx(4.0) and len(check.renditions) == 2


def test_a_playlist_of_the_wrong_kind_fails_saying_which_kind():
    clock = Clock()
    url = BASE + "test.m3u8"
    server = Server(clock, {url: live()})
    [check] = check_streams(server.fetch, {url: True}, within_s=3, clock=clock, sleep=clock.sleep)
    assert not check and not check.renditions
    assert check.explain().startswith(f"{url} is a media playlist, where the stream has variants (a master playlist)"
                                      " after 3.0s")

    server = Server(clock, {})
    [check] = check_streams(server.fetch, {url: False}, within_s=1, clock=clock, sleep=clock.sleep)
    assert check.explain() == f"{url}: no answer in 1.0s (3 failed fetches, the last: GET {url}: HTTP 404)"
