"""livestream.aws.stream_check, the closing check of configure.yml, against an HTTPS
server on 127.0.0.1 that only a throwaway CA vouches for: streams.json, a media playlist
and a master playlist with two renditions, live or frozen."""

from __future__ import annotations

import http.server
import json
import os
import subprocess

import pytest

from ansible_collections.livestream.aws.plugins.modules.stream_check import run
from livestream_probes.certs import throwaway_ca
from livestream_testing import ROOT
from livestream_testing.probe_servers import SyntheticLive, https_server

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=2928000,RESOLUTION=1280x720
ladder_720/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1528000,RESOLUTION=854x480
ladder_480/index.m3u8
"""


def service(streams: list[dict], *, frozen: tuple[str, ...] = ()) -> type[http.server.BaseHTTPRequestHandler]:
    """streams.json, /hls/ladder.m3u8 (a master playlist), and every other /hls/*.m3u8 a
    live media playlist (a segment every 0.3 s), or a frozen one when its path is in ``frozen``."""
    live = SyntheticLive(segment_s=0.3, window=3)
    still = live.playlist()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass

        def do_GET(self):  # pylint: disable=invalid-name
            if self.path == "/streams.json":
                body = json.dumps(streams)
            elif self.path == "/hls/ladder.m3u8":
                body = MASTER
            elif self.path.startswith("/hls/") and self.path.endswith(".m3u8") and "missing" not in self.path:
                body = still if self.path in frozen else live.playlist()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

    return Handler


STREAMS = [{"name": "plain", "playlist": "/hls/plain.m3u8", "variants": False},
           {"name": "ladder", "playlist": "/hls/ladder.m3u8", "variants": True}]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("tls"), ["localhost"])


def check(port: int, ca_path, timeout: float = 5.0):
    return run({"url": f"https://127.0.0.1:{port}/", "ca_path": str(ca_path) if ca_path else None,
                "timeout": timeout, "poll_interval": 0.1})


def test_every_stream_and_every_rendition_advances(tls):
    with https_server(tls, service(STREAMS)) as port:
        failed, message, result = check(port, tls.ca)
    assert not failed, message
    plain, ladder = result["streams"]
    assert (plain["name"], plain["kind"], plain["ok"], plain["error"]) == ("plain", "media", True, None)
    assert ladder["kind"] == "master" and ladder["variants"] is True
    assert [r["url"] for r in ladder["renditions"]] == [
        f"https://127.0.0.1:{port}/hls/ladder_720/index.m3u8", f"https://127.0.0.1:{port}/hls/ladder_480/index.m3u8"]
    for rendition in plain["renditions"] + ladder["renditions"]:
        assert rendition["advanced"] and rendition["to_sequence"] > rendition["from_sequence"]
        assert rendition["elapsed_s"] < 1.5
    assert result["elapsed_s"] < 2


def test_an_encoders_stream_is_not_waited_for(tls):
    # "studio" has no playlist (404): no encoder publishes it; the check passes, naming it
    studio = {"name": "studio", "playlist": "/hls/missing.m3u8", "variants": True, "encoder": True}
    with https_server(tls, service([STREAMS[0], studio])) as port:
        failed, message, result = check(port, tls.ca, timeout=2)
    assert not failed, message
    assert message == "Every stream plays over HTTPS (1); live when their encoders publish: studio"
    assert [stream["name"] for stream in result["streams"]] == ["plain"] and result["encoder_streams"] == ["studio"]


def test_a_frozen_rendition_fails_the_run_naming_stream_and_rendition(tls):
    with https_server(tls, service(STREAMS, frozen=("/hls/ladder_480/index.m3u8",))) as port:
        failed, message, result = check(port, tls.ca, timeout=1)
    assert failed
    assert "stream 'ladder': rendition https://127.0.0.1:" in message
    assert "/hls/ladder_480/index.m3u8: stale: no new segment in 1." in message
    assert "plain" not in message and result["streams"][0]["ok"] and not result["streams"][1]["ok"]


def test_a_playlist_of_the_other_kind_fails_saying_so(tls):
    switched = [{"name": "plain", "playlist": "/hls/ladder.m3u8", "variants": False}]
    with https_server(tls, service(switched)) as port:
        failed, message, _result = check(port, tls.ca, timeout=0.5)
    assert failed and "is a master playlist, where the stream has no variants" in message


def test_http_errors_and_tls_errors_are_named(tls, tmp_path):
    missing = [{"name": "gone", "playlist": "/hls/missing.m3u8"}]
    with https_server(tls, service(missing)) as port:
        failed, message, _result = check(port, tls.ca, timeout=0.5)
        assert failed and "stream 'gone'" in message and "missing.m3u8: HTTP 404" in message
        # the system's CAs do not vouch for the throwaway one
        failed, message, result = check(port, None, timeout=0.5)
        assert failed and "TLS error" in message and "certificate verify failed" in message
        assert "streams" not in result
        other = throwaway_ca(tmp_path / "other", ["localhost"])
        failed, message, _result = check(port, other.ca, timeout=0.5)
        assert failed and "TLS error" in message


def test_the_module_runs_under_ansible_changes_nothing_and_fails_the_run(tls, tmp_path):
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}

    def module(port: int, **options) -> tuple[int, dict]:
        proc = subprocess.run(
            ["ansible", "localhost", "--check", "-m", "livestream.aws.stream_check",
             "-a", json.dumps({"url": f"https://127.0.0.1:{port}/", "ca_path": str(tls.ca), **options})],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
        [result] = [task["hosts"]["localhost"] for play in json.loads(proc.stdout)["plays"] for task in play["tasks"]]
        return proc.returncode, result

    with https_server(tls, service(STREAMS, frozen=("/hls/plain.m3u8",))) as port:
        returncode, result = module(port, timeout=0.5)
        assert returncode != 0 and result["failed"] and result["changed"] is False
        assert "stream 'plain': rendition" in result["msg"] and "stale" in result["msg"]
    with https_server(tls, service(STREAMS)) as port:
        returncode, result = module(port, timeout=10)
        assert returncode == 0, result
        # a CA file that is not there is said at once, not as every request failing till the end
        missing = tmp_path / "missing.pem"
        returncode, failure = module(port, ca_path=str(missing), timeout=60)
        assert returncode != 0 and failure["msg"] == f"ca_path: {missing} is not a file on this machine"
    assert result["changed"] is False and [stream["ok"] for stream in result["streams"]] == [True, True]
