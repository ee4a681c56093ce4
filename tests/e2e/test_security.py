"""The service seen from the internet (the lab's root namespace) and from inside the VPC:
only what a user needs answers, and only the stream key publishes."""

from __future__ import annotations

import shlex

import pytest

from probes.net import OPEN, tcp_state

pytestmark = pytest.mark.lab

PORTS = (22, 80, 443, 1935, 8080)
# Short bounded pushes: long enough for the frontend's on_publish check to decide.
PUSH_SECONDS = 3


def _answering(address: str) -> list[int]:
    return [port for port in PORTS if tcp_state(address, port) == OPEN]


def test_the_bastion_answers_only_ssh_from_the_internet(machines):
    assert _answering(machines["bastion"]["address"]) == [22]


def test_the_frontend_answers_nothing_but_http_and_https_from_the_internet(machines):
    assert _answering(machines["frontend"]["address"]) == [80, 443]


def test_rtmp_on_the_frontend_is_refused_from_the_internet(machines):
    # the port is for the backend only (it answers inside the VPC: see the publish tests);
    # the lab enforces the security groups the API holds, as AWS does
    assert tcp_state(machines["frontend"]["address"], 1935) != OPEN


def test_the_backend_is_unreachable_from_the_internet(machines, ssh):
    backend = machines["backend"]["address"]
    states = {port: tcp_state(backend, port) for port in PORTS}
    assert OPEN not in states.values(), states
    # ...while it is up and answering through the bastion, so this is not a dead machine
    assert ssh(machines["backend"]["name"], "true").returncode == 0


@pytest.fixture(scope="module")
def publish(machines, ssh):
    """Push a test pattern from the backend to the frontend's RTMP application for a few
    seconds; returns the ffmpeg run. The backend's own stream is paused meanwhile, since
    nginx-rtmp lets one publisher hold a stream name."""
    backend = machines["backend"]["name"]
    unit = "livestream-stream@test.service"
    stopped = ssh(backend, f"sudo -n systemctl stop {unit}")
    assert stopped.returncode == 0, stopped.stderr

    def push(query: str):
        url = f"rtmp://{machines['frontend']['address']}/live/test{query}"
        command = ("timeout 30 ffmpeg -hide_banner -nostats -loglevel error -re -f lavfi"
                   f" -i testsrc2=size=320x180:rate=25 -t {PUSH_SECONDS} -c:v libx264 -preset ultrafast"
                   f" -g 25 -f flv {shlex.quote(url)}")
        return ssh(backend, command)

    yield push
    ssh(backend, f"sudo -n systemctl start {unit}")


def _refused_by_the_frontend(result) -> bool:
    """ffmpeg failed after reaching the RTMP application (not for want of a connection,
    nor because another publisher holds the name)."""
    return (result.returncode != 0 and "Cannot open connection" not in result.stderr
            and "Already publishing" not in result.stderr)


def test_publishing_without_a_key_is_refused(publish):
    result = publish("")
    assert _refused_by_the_frontend(result), result.stderr


def test_publishing_with_a_wrong_key_is_refused(publish, stream_key):
    result = publish(f"?key=not-{stream_key}")
    assert _refused_by_the_frontend(result), result.stderr


def test_publishing_with_the_stream_key_works(publish, stream_key):
    # the control for the two refusals above: the same push, only the key differs
    result = publish(f"?key={stream_key}")
    assert result.returncode == 0, result.stderr
