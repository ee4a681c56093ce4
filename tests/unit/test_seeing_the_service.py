"""Seeing the service, as pure logic: the viewer count (roles/frontend/files/livestream-viewers),
the metrics' collector (roles/metrics/files/livestream-metrics), whose output `promtool check
metrics` accepts, and the alert rules shipped with the collection (prometheus/), under
`promtool test rules`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from livestream_testing import ROOT
from livestream_testing.programs import metrics_collector, viewer_count


viewers_service = viewer_count()
collector = metrics_collector()

SESSION = "0123456789abcdef0123456789abcdef"


def promtool():
    tool = shutil.which("promtool")
    if not tool:
        pytest.fail("promtool is missing: run `make setup` (Debian's prometheus, bindep.txt)")
    return tool


# -- the viewer count -------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_viewer_is_a_session_seen_within_the_window():
    clock = Clock()
    viewers = viewers_service.Viewers(["test", "studio"], window=15, max_sessions=100, clock=clock)
    for number in range(3):
        assert viewers.beacon("test", f"{number}" * 32)
    assert viewers.beacon("test", "0" * 32)  # the same page again: still one viewer
    assert viewers.counts() == {"test": 3, "studio": 0}
    clock.now += 10
    assert viewers.beacon("test", "0" * 32)
    clock.now += 6  # 16 s after the others' last beacon, 6 s after this one's
    assert viewers.counts() == {"test": 1, "studio": 0}


def test_a_page_that_switches_streams_is_counted_on_the_new_one_only():
    viewers = viewers_service.Viewers(["test", "studio"], window=15, max_sessions=100, clock=Clock())
    viewers.beacon("test", SESSION)
    viewers.beacon("studio", SESSION)
    assert viewers.counts() == {"test": 0, "studio": 1}


@pytest.mark.parametrize("stream, session", [
    ("nope", SESSION), ("test", "short"), ("test", "../../etc/passwd-0123456789"), ("test", None), (None, SESSION),
    ("test", "x" * 65),
])
def test_only_offered_streams_and_session_ids_a_player_makes_are_counted(stream, session):
    viewers = viewers_service.Viewers(["test"], window=15, max_sessions=100, clock=Clock())
    assert not viewers.beacon(stream, session)
    assert viewers.counts() == {"test": 0}


def test_the_sessions_kept_are_bounded_whatever_clients_send():
    viewers = viewers_service.Viewers(["test", "studio"], window=15, max_sessions=5, clock=Clock())
    for number in range(10):
        viewers.beacon("test" if number % 2 else "studio", f"{number:032d}")
    assert sum(viewers.counts().values()) == 5
    # those counted stay counted
    assert viewers.beacon("studio", f"{0:032d}") and sum(viewers.counts().values()) == 5


def test_the_service_answers_beacons_with_every_streams_count_over_http():
    server = viewers_service.Server(viewers_service.Viewers(["test", "studio"], window=15, max_sessions=100),
                                    address=("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/viewers?stream=test&session={SESSION}", timeout=5) as answer:
            assert answer.headers["Cache-Control"] == "no-store"
            assert json.load(answer) == {"window_seconds": 15.0, "viewers": {"test": 1, "studio": 0}}
        with urllib.request.urlopen(f"{base}/viewers", timeout=5) as answer:  # the count alone
            assert json.load(answer)["viewers"] == {"test": 1, "studio": 0}
        for bad in ("/viewers?stream=test&session=x", "/viewers?stream=nope&session=" + SESSION, "/other"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + bad, timeout=5)  # pylint: disable=consider-using-with
            assert refused.value.code in (400, 404)
    finally:
        server.shutdown()
        server.server_close()


def test_the_service_takes_its_unix_socket_from_systemd(tmp_path):
    """As livestream-viewers.socket starts it: the listening socket as file descriptor 3
    (LISTEN_FDS, LISTEN_PID), a unix socket; the collector reads the counts through it."""
    import socket  # pylint: disable=import-outside-toplevel

    (tmp_path / "viewers.json").write_text(json.dumps({"streams": ["test"], "window_seconds": 15}))
    path = str(tmp_path / "viewers.sock")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(path)
    listening.listen()

    def as_fd_3():
        os.dup2(listening.fileno(), 3)
        os.set_inheritable(3, True)

    script = ROOT / "roles/frontend/files/livestream-viewers"
    child = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$1" "$2"', shutil.which("python3"),
                              str(script), str(tmp_path / "viewers.json")], preexec_fn=as_fd_3, close_fds=False)
    listening.close()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert collector.read_viewers(path) == {"test": 0}
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_simulated_viewers_are_counted_as_pages_are():
    """The probe the e2e test uses (livestream_probes.viewers) against the service itself."""
    from livestream_probes.hls import HlsClient  # pylint: disable=import-outside-toplevel
    from livestream_probes.viewers import BeaconViewers  # pylint: disable=import-outside-toplevel

    server = viewers_service.Server(viewers_service.Viewers(["test"], window=15, max_sessions=100),
                                    address=("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with BeaconViewers(HlsClient(), f"http://127.0.0.1:{server.server_address[1]}", "test", 4,
                           interval_s=0.2) as simulated:
            assert simulated.first_round.wait(5)
        assert simulated.errors == [] and simulated.counts == {"test": 4}
    finally:
        server.shutdown()
        server.server_close()


# -- the collector ----------------------------------------------------------------------

STAT = """<?xml version="1.0" encoding="utf-8" ?>
<rtmp><nginx_version>1.22.1</nginx_version><server><application><name>ingest</name><live>
<stream><name>studio</name><bw_in>0</bw_in><nclients>1</nclients></stream></live></application>
<application><name>live</name><live>
<stream><name>test</name><time>5000</time><bw_in>2512000</bw_in><bw_video>2400000</bw_video>
<meta><video><width>1280</width><height>720</height><frame_rate>30</frame_rate><codec>H264</codec></video></meta>
<nclients>1</nclients><publishing/><active/></stream>
<stream><name>studio_720</name><bw_in>3000000</bw_in><meta><video><frame_rate>25.5</frame_rate></video></meta>
<publishing/><active/></stream>
<stream><name>studio_480</name><bw_in>0</bw_in><nclients>0</nclients></stream>
<nclients>2</nclients></live></application></server></rtmp>"""

# nginx's stub_status page, trailing spaces included
STUB = ("Active connections: 7 \n"
        "server accepts handled requests\n"
        " 120 118 4031 \n"
        "Reading: 0 Writing: 2 Waiting: 5 \n")

FRONTEND = {
    "role": "frontend", "domain": "live.example.com",
    "streams": ["test", "studio"], "encoders": ["studio"],
    "publications": [{"stream": "test", "name": "test"}, {"stream": "studio", "name": "studio_720"},
                     {"stream": "studio", "name": "studio_480"}],
}


def samples(metrics):
    return {(name, tuple(sorted(labels.items()))): value
            for name, family in metrics.families.items() for labels, value in family["samples"]}


def check_metrics(text):
    result = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_frontends_metrics_say_what_is_live_and_how_well():
    stat = collector.parse_stat(STAT)
    assert stat[("live", "test")] == {"publishing": True, "bw_in": 2512000.0, "frame_rate": 30.0}
    assert stat[("live", "studio_480")]["publishing"] is False
    stub = collector.parse_stub_status(STUB)
    assert stub == {"active": 7, "accepted": 120, "handled": 118, "requests": 4031, "reading": 0, "writing": 2, "waiting": 5}
    metrics = collector.Metrics()
    collector.frontend_metrics(metrics, FRONTEND, 1000.0, stat, {"test": 3, "studio": 0}, stub,
                               {"test": 998.5, "studio_720": 990.0}, 1000.0 + 20 * 86400)
    found = samples(metrics)
    assert found[("livestream_stream_live", (("encoder", "false"), ("stream", "test")))] == 1
    # a ladder is live when every rendition is
    assert found[("livestream_stream_live", (("encoder", "true"), ("stream", "studio")))] == 0
    assert found[("livestream_stream_viewers", (("stream", "test"),))] == 3
    assert found[("livestream_stream_ingest_bytes_per_second", (("rendition", "source"), ("stream", "test")))] == 314000
    assert found[("livestream_stream_ingest_frames_per_second", (("rendition", "720p"), ("stream", "studio")))] == 25.5
    assert found[("livestream_stream_newest_fragment_age_seconds", (("rendition", "source"), ("stream", "test")))] == 1.5
    assert ("livestream_stream_ingest_bytes_per_second", (("rendition", "480p"), ("stream", "studio"))) not in found
    assert found[("livestream_nginx_connections", (("state", "waiting"),))] == 5
    assert found[("livestream_nginx_http_requests_total", ())] == 4031
    assert found[("livestream_certificate_expiry_timestamp_seconds", (("domain", "live.example.com"),))] == 1000 + 20 * 86400
    text = metrics.render()
    assert '# TYPE livestream_nginx_connections_accepted_total counter' in text
    check_metrics(text)


def test_a_source_that_does_not_answer_leaves_its_metrics_out_and_says_so(tmp_path):
    config = {**FRONTEND, "stat_url": "http://127.0.0.1:9/stat", "status_url": "http://127.0.0.1:9/nginx-status",
              "viewers_socket": str(tmp_path / "none.sock"), "hls_dir": str(tmp_path), "certificate": str(tmp_path / "no.pem")}
    found = samples(collector.collect(config, 1000.0))
    assert {labels[0][1]: value for (name, labels), value in found.items() if name == "livestream_metrics_source_up"} == {
        "rtmp_stat": 0, "viewers": 0, "nginx_status": 0}
    assert not any(key[0] == "livestream_stream_live" for key in found)
    assert found[("livestream_metrics_collected_timestamp_seconds", ())] == 1000.0


def test_the_newest_fragment_is_when_its_playlist_listed_it(tmp_path):
    for name, age in (("test.m3u8", 2), ("test-3.ts", 0), ("test_720.m3u8", 5), ("testing.m3u8", 0)):
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (time.time() - age, time.time() - age))
    newest = collector.newest_fragments(tmp_path, {"test", "test_720", "test_480"})
    assert set(newest) == {"test", "test_720"}
    assert time.time() - newest["test"] == pytest.approx(2, abs=1)
    assert collector.newest_fragments(tmp_path / "gone", {"test"}) == {}


def test_the_backends_units_and_the_bastions_nat():
    shown = collector.unit_properties("Id=livestream-stream@test.service\nNRestarts=4\nActiveState=active\n\n"
                                      "Id=livestream-stream@test.1.service\nNRestarts=0\nActiveState=activating\n")
    metrics = collector.Metrics()
    collector.backend_metrics(metrics, shown)
    found = samples(metrics)
    assert found[("livestream_stream_unit_restarts_total", (("stream", "test"), ("unit", "test")))] == 4
    assert found[("livestream_stream_unit_active", (("stream", "test"), ("unit", "test.1")))] == 0
    check_metrics(metrics.render())
    ruleset = "table ip livestream_nat {\n chain postrouting {\n  ip saddr $private_nets masquerade\n }\n}\n"
    assert collector.nat_up("1\n", ruleset)
    assert not collector.nat_up("0\n", ruleset)
    assert not collector.nat_up("1\n", "table inet livestream_filter {}")


def test_label_values_are_escaped():
    metrics = collector.Metrics()
    metrics.add("livestream_x_seconds", "gauge", "A test.", 1.25, {"stream": 'a"b\\c'})
    assert 'livestream_x_seconds{stream="a\\"b\\\\c"} 1.25' in metrics.render()


# -- the alert rules ------------------------------------------------------------------------

def test_the_alert_rules_fire_as_their_tests_say():
    result = subprocess.run([promtool(), "test", "rules", "livestream.rules.test.yml"], cwd=ROOT / "tests/unit/prometheus",
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([promtool(), "check", "config", "prometheus.example.yml"], cwd=ROOT / "prometheus",
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the status command's table (plugins/filter/status_table.py) ---------------------------

def test_the_status_table_says_what_an_operator_asks_first():
    from ansible_collections.livestream.aws.plugins.filter.status_table import status_table  # pylint: disable=import-outside-toplevel

    stack = {"name": "live", "instances": [
        {"instance_id": "i-b", "tags": {"Role": "backend"}, "state": {"name": "running"}, "private_ip_address": "10.0.2.4"},
        {"instance_id": "i-f", "tags": {"Role": "frontend"}, "state": {"name": "running"}, "private_ip_address": "10.0.1.5"},
        {"instance_id": "i-j", "tags": {"Role": "bastion"}, "state": {"name": "stopped"}, "private_ip_address": "10.0.1.4",
         "public_ip_address": "198.51.100.2"},
    ], "addresses": [{"instance_id": "i-f", "public_ip": "198.51.100.1"}]}
    metrics = collector.Metrics()
    collector.frontend_metrics(metrics, FRONTEND, 1000.0, collector.parse_stat(STAT), {"test": 3, "studio": 0},
                               collector.parse_stub_status(STUB), {"test": 998.5}, 1000.0 + 20 * 86400)
    metrics.add("livestream_metrics_collected_timestamp_seconds", "gauge", "When.", 995.0)
    backend = collector.Metrics()
    collector.backend_metrics(backend, collector.unit_properties(
        "Id=livestream-stream@test.service\nNRestarts=4\nActiveState=active\n"))
    bastion = "# HELP livestream_nat_up x\n# TYPE livestream_nat_up gauge\nlivestream_nat_up 1\n"
    table = status_table(stack, frontend=metrics.render(), backend=backend.render(), bastion=bastion, now=1000.0)
    lines = table.splitlines()
    assert lines[0] == "stack live"
    # instances by role, the frontend's Elastic IP said
    assert [line.split()[0] for line in lines[2:5]] == ["bastion", "frontend", "backend"]
    assert "198.51.100.1 (Elastic IP)" in lines[3] and "stopped" in lines[2]
    (test_row,) = [line.split() for line in lines if line.startswith("test ")]
    assert test_row == ["test", "yes", "3", "2512", "30", "1.5", "s", "4"]
    (studio_row,) = [line.split() for line in lines if line.startswith("studio ")]
    assert studio_row[:3] == ["studio", "no", "0"]
    assert "certificate live.example.com: expires 1970-01-21 00:16 UTC, in 20 days" in lines
    assert "bastion NAT: up" in lines
    assert "metrics collected: frontend 5.0 s ago, backend never, bastion never" in lines
    # nothing known: said so, no failure
    empty = status_table({"name": "live"})
    assert "streams: unknown" in empty and "certificate: unknown" in empty and "bastion NAT: unknown" in empty
