"""What the stream contract implies (module_utils/streams.py, behind the filters
livestream.aws.stream_publications and livestream.aws.restream_destinations): the names and keys
the frontend accepts, and one backend unit per restreaming destination, sending what the
frontend's live application holds of the stream, with what its journal must hide."""

from __future__ import annotations

from ansible_collections.livestream.aws.plugins.module_utils.streams import publications, restream_destinations

LADDER = [{"height": 1080, "video_kbps": 5000, "audio_kbps": 128}, {"height": 480, "video_kbps": 1400, "audio_kbps": 96}]


def test_each_destination_of_each_stream_gets_a_unit_of_its_own():
    streams = [
        {"name": "studio", "mode": "transcode", "restream": [
            {"url": "rtmps://a.rtmps.youtube.com/live2", "key": "abcd-efgh-ijkl-mnop"},
            {"url": "rtmp://live.twitch.tv/app/", "key": "live_123_XyZ"}]},
        {"name": "test"},
        {"name": "radio", "mode": "copy", "restream": [{"url": "rtmp://192.0.2.10:1935/live/radio"}]},
    ]
    found = restream_destinations(streams, LADDER)
    assert [(d["name"], d["stream"], d["published"], d["secure"]) for d in found] == [
        ("studio.1", "studio", "studio_1080", True),
        ("studio.2", "studio", "studio_1080", False),
        ("radio.1", "radio", "radio", False),
    ]
    # the key after the server's URL (one slash), as OBS joins Server and Stream Key
    assert [d["url"] for d in found] == ["rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl-mnop",
                                         "rtmp://live.twitch.tv/app/live_123_XyZ", "rtmp://192.0.2.10:1935/live/radio"]


def test_the_journal_hides_the_whole_url_and_the_key_longest_first():
    [youtube, plain] = restream_destinations([{"name": "s", "restream": [
        {"url": "rtmps://a.rtmps.youtube.com/live2", "key": "abcd-efgh-ijkl-mnop"},
        {"url": "rtmp://192.0.2.10/live/with-its-key-inside"}]}], LADDER)
    assert youtube["secrets"] == ["rtmps://a.rtmps.youtube.com/live2/abcd-efgh-ijkl-mnop", "abcd-efgh-ijkl-mnop"]
    assert plain["secrets"] == ["rtmp://192.0.2.10/live/with-its-key-inside"]


def test_no_destinations_no_units():
    assert restream_destinations([{"name": "test"}, {"name": "x", "restream": []}], LADDER) == []


def test_the_frontend_accepts_each_stream_under_the_names_the_backend_publishes():
    streams = [{"name": "test", "key": "k" * 16}, {"name": "studio", "source": "ingest", "mode": "transcode", "key": "s" * 16},
               {"name": "radio", "mode": "audio", "key": "r" * 16}]
    assert [(p["application"], p["name"], p["stream"]) for p in publications(streams, LADDER)] == [
        ("live", "test", "test"),
        # what the encoder publishes, then the ladder the backend makes of it
        ("ingest", "studio", "studio"), ("live", "studio_1080", "studio"), ("live", "studio_480", "studio"),
        ("live", "radio", "radio"),
    ]
    assert publications(streams, LADDER)[1]["path"] == "ingest/studio/" + "s" * 16
