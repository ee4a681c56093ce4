"""The roles refuse bad input before they change anything, with a message naming the value.

The roles run on the controller itself here, in check mode (so that even a check that
wrongly passed could not change this machine), and without facts: every input check
comes before the first task that needs the target."""

from __future__ import annotations

import pytest

GOOD_KEY = "k" * 24
GOOD_STREAM = {"name": "studio", "key": GOOD_KEY, "source": "testsrc", "mode": "copy"}


def run_role(ansible, role, variables):
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": f"livestream.aws.{role}", "vars": variables}],
    }
    return ansible.playbook([play], check=True)


def failed_tasks(result):
    return {
        # "livestream.aws.backend : Check the stream names" -> "Check the stream names"
        task["task"]["name"].split(" : ")[-1]: outcome
        for play in result.report.get("plays", [])
        for task in play["tasks"]
        for outcome in task["hosts"].values()
        if outcome.get("failed")
    }


def messages(result):
    texts = []
    for outcome in failed_tasks(result).values():
        texts.append(outcome.get("msg", ""))
        texts += [item.get("msg", "") for item in outcome.get("results", []) if item.get("failed")]
    return " ".join(str(text) for text in texts)


def frontend_vars(**overrides):
    return {"frontend_domain": "live.example.test", "frontend_streams": [GOOD_STREAM], **overrides}


def backend_vars(**overrides):
    return {"backend_frontend_address": "10.0.1.10", "backend_streams": [GOOD_STREAM], **overrides}


BAD_INPUTS = [
    ("backend", backend_vars(backend_streams=[dict(GOOD_STREAM, name="my stream!")]), "my stream!"),
    ("frontend", frontend_vars(frontend_streams=[dict(GOOD_STREAM, name="a/b")]), "a/b"),
    ("backend", backend_vars(backend_streams=[GOOD_STREAM, dict(GOOD_STREAM, key="x" * 20)]), "studio"),
    ("frontend", frontend_vars(frontend_streams=[GOOD_STREAM, GOOD_STREAM]), "studio"),
    # a missing key: the message names the variable it is missing from (and the stream)
    ("backend", backend_vars(backend_streams=[{"name": "nokey", "source": "testsrc", "mode": "copy"}]),
     "key found in backend_streams"),
    ("frontend", frontend_vars(frontend_streams=[{"name": "nokey", "source": "testsrc"}]), "key found in frontend_streams"),
    ("backend", backend_vars(backend_streams=[dict(GOOD_STREAM, source="/nowhere/clip.mp4")]), "/nowhere/clip.mp4"),
    ("frontend", frontend_vars(frontend_hls_fragment_seconds=0.25), "0.25"),
    ("backend", backend_vars(backend_hls_fragment_seconds=0), "0"),
    ("frontend", frontend_vars(frontend_hls_playlist_fragments=2), "2"),
    # a source filter needs video the backend encodes: not a stream it copies as it is
    ("backend", backend_vars(backend_source_filter="hflip",
                             backend_streams=[GOOD_STREAM, dict(GOOD_STREAM, name="camera", source="rtsp://10.0.2.50/live")]),
     "camera"),
    ("frontend", frontend_vars(frontend_player_target_latency_fragments=0.5), "0.5"),
    # the stream contract (role livestream.aws.streams) checks each role's own values, and names
    # that role's variable and the shared one the role's default comes from
    ("frontend", frontend_vars(frontend_streams=[dict(GOOD_STREAM, mode="abr")]), "'abr'"),
    ("backend", backend_vars(backend_hls_fragment_seconds=0.3), "backend_hls_fragment_seconds is 0.3"),
    # a keyframe every fragment: a whole number of frames
    ("backend", backend_vars(backend_hls_fragment_seconds=0.5, backend_video_fps=25),
     "every 0.5 s (backend_hls_fragment_seconds, livestream_hls_fragment_seconds) at 25 frames per second"),
    ("frontend", frontend_vars(frontend_player_join_fragments=0.5), "frontend_player_join_fragments is 0.5"),
    ("frontend", frontend_vars(frontend_abr_ladder=[{"height": 720, "video_kbps": 2800, "audio_kbps": 128}] * 2,
                               frontend_streams=[dict(GOOD_STREAM, mode="transcode")]), "frontend_abr_ladder"),
    ("backend", {"backend_frontend_address": "10.0.1.10", "livestream_streams": [dict(GOOD_STREAM, key="short")]},
     "'studio' of backend_streams (livestream_streams) has no usable key"),
    ("streams", {"streams_list": [dict(GOOD_STREAM, name="a_b")]}, "'a_b' of streams_list"),
    # RTMPS ingest wants a port of its own
    ("frontend", frontend_vars(frontend_ingest_port=443), "frontend_ingest_port (livestream_ingest_port) 443"),
    ("frontend", frontend_vars(frontend_ingest_port="rtmps"), "argument 'frontend_ingest_port' is of type str"),
    # an encoder's stream has a key like any other
    ("frontend", frontend_vars(frontend_streams=[{"name": "live", "source": "ingest", "mode": "transcode"}]),
     "no key found in frontend_streams (livestream_streams) for stream 'live'"),
    # a key with a character that breaks a URL
    ("backend", backend_vars(backend_streams=[dict(GOOD_STREAM, key="k" * 20 + "?x=1")]), "'studio' of backend_streams"),
    # restreaming goes to RTMP(S) servers only; the message shows the server, never the rest of the URL
    ("backend", backend_vars(backend_streams=[dict(GOOD_STREAM, restream=[{"url": "https://example.test/in/secret-path",
                                                                           "key": GOOD_KEY}])]),
     "each url rtmp:// or rtmps://<host>[:port]/<path> (found: https://example.test/...)"),
    ("frontend", frontend_vars(frontend_streams=[dict(GOOD_STREAM, restream=[{"url": "rtmp://a.test/app",
                                                                             "key": "has space"}])]),
     "each key, when given, of letters, digits"),
]

GOOD_INPUTS = [
    ("frontend", frontend_vars()),
    ("backend", backend_vars()),
    ("frontend", frontend_vars(frontend_player_hls_config={}, frontend_player_target_latency_fragments=0)),
    # half-second fragments (the low-latency setting)
    ("frontend", frontend_vars(frontend_hls_fragment_seconds=0.5, frontend_player_join_fragments=0)),
    ("backend", backend_vars(backend_hls_fragment_seconds=0.5, backend_video_fps=60)),
    ("backend", backend_vars(backend_source_filter="hflip",
                             backend_streams=[GOOD_STREAM, dict(GOOD_STREAM, name="camera", source="rtsp://10.0.2.50/live",
                                                                mode="transcode")])),
    ("frontend", {"frontend_domain": "live.example.test", "livestream_streams": [GOOD_STREAM],
                  "livestream_hls_fragment_seconds": 2}),
    ("streams", {"streams_list": [GOOD_STREAM]}),
    # an encoder's stream, copied or transcoded
    ("backend", backend_vars(backend_streams=[dict(GOOD_STREAM, source="ingest"),
                                              dict(GOOD_STREAM, name="studio-ladder", source="ingest", mode="transcode")])),
    ("frontend", frontend_vars(frontend_streams=[dict(GOOD_STREAM, source="ingest", mode="transcode")],
                               frontend_ingest_port=8443)),
]


@pytest.mark.parametrize("role,variables,named", BAD_INPUTS, ids=[f"{case[0]}-{case[2]}" for case in BAD_INPUTS])
def test_bad_input_is_refused_by_name_before_any_change(ansible, role, variables, named):
    result = run_role(ansible, role, variables)

    assert result.returncode != 0
    failed = failed_tasks(result)
    assert failed, result.stdout[-2000:]
    # the failure is the input check (argument spec or the role's own checks), nothing later
    assert all(name.startswith(("Check", "Validating arguments")) for name in failed), failed.keys()
    assert named in messages(result)
    assert result.changed() == 0
    assert GOOD_KEY not in result.stdout, "a stream key was printed"


@pytest.mark.parametrize("role,variables", GOOD_INPUTS)
def test_good_input_passes_every_input_check(ansible, role, variables):
    """The control: the same checks let good input through (the run then stops at the
    first task that needs the target's facts, which this test does not gather)."""
    result = run_role(ansible, role, variables)

    assert not [name for name in failed_tasks(result) if name.startswith(("Check", "Validating arguments"))]
    assert GOOD_KEY not in result.stdout, "a stream key was printed"
