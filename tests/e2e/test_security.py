"""The service seen from the internet (the lab's root namespace) and from inside the VPC:
only what a user needs answers, and only the stream key publishes."""

from __future__ import annotations

import shlex
import subprocess
from xml.etree import ElementTree

import pytest

from livestream_testing.lab import aws_environment
from livestream_lab.stack import describe
from livestream_probes.net import SILENT, UNREACHABLE, tcp_state

pytestmark = pytest.mark.lab

# A scan of every TCP port of every address: bounded by nmap's own limits and by this.
SCAN_TIMEOUT_SECONDS = 600
# Short bounded pushes: long enough for the frontend's on_publish check to decide.
PUSH_SECONDS = 3


def _stack_addresses(lab_config) -> tuple[list[str], list[str]]:
    """(public, private): every address of the stack's instances, as the API holds them."""
    stack = describe(lab_config.stack, aws_environment(lab_config))
    interfaces = [interface for instance in stack.instances for interface in instance.interfaces]
    return (sorted(str(interface.public_address) for interface in interfaces if interface.public_address),
            sorted(str(interface.address) for interface in interfaces))


def _scan(addresses: list[str]) -> dict[str, list[int]]:
    """address -> its TCP ports that complete a handshake from here, by nmap's SYN scan of
    all 65535 ports (raw packets: a security group's silent drop costs one retry, not a
    connect timeout per port)."""
    result = subprocess.run(
        ["nmap", "-n", "-Pn", "-sS", "-p-", "--max-retries", "1", "--min-rate", "20000", "--host-timeout", "300s",
         "-oX", "-", *addresses],
        capture_output=True, text=True, timeout=SCAN_TIMEOUT_SECONDS, check=False)
    assert result.returncode == 0, result.stderr
    found = {}
    for host in ElementTree.fromstring(result.stdout).iter("host"):
        address = host.find("address").get("addr")
        assert host.find("status").get("state") == "up", f"nmap gave up on {address}"
        found[address] = sorted(int(port.get("portid")) for port in host.iter("port")
                                if port.find("state").get("state") == "open")
    assert sorted(found) == sorted(addresses), f"nmap did not scan {set(addresses) - set(found)}: {result.stderr}"
    return found


def _sweep(address: str) -> dict[str, list[int]]:
    """How every TCP port of ``address`` answers a connection from here, by state."""
    states: dict[str, list[int]] = {}
    for port in range(1, 65536):
        states.setdefault(tcp_state(address, port, timeout=1), []).append(port)
    return states


@pytest.fixture(scope="module")
def exposure(lab_config, machines):
    """(public address -> open ports, private address -> ports by how they answered)."""
    public, private = _stack_addresses(lab_config)
    return _scan(public), {address: _sweep(address) for address in private}


def test_from_the_internet_only_ssh_on_the_bastion_and_web_and_rtmps_on_the_frontend_answer(exposure, machines):
    public, _private = exposure
    # 1936: RTMPS ingest, open to livestream_ingest_cidrs (by default the admin CIDRs, where this runs)
    assert public == {machines["bastion"]["public"]: [22], machines["frontend"]["public"]: [80, 443, 1936]}


def test_no_private_address_answers_from_the_internet(exposure, machines):
    _public, private = exposure
    assert sorted(private) == sorted(machines[role]["private"] for role in ("bastion", "frontend", "backend"))
    for address, states in private.items():
        # no route to it at all, the public subnet's included
        assert list(states) == [UNREACHABLE], f"{address}: {({state: ports[:10] for state, ports in states.items()})}"


def test_the_backend_is_up_while_the_internet_cannot_reach_it(machines, ssh):
    # the control for the above: the machines behind the private addresses are up
    assert machines["backend"]["public"] is None
    assert ssh(machines["backend"]["name"], "true").returncode == 0


def test_rtmp_on_the_frontend_is_refused_from_the_internet(machines):
    # the port is for the backend only (it answers inside the VPC: see the publish tests);
    # the lab enforces the security groups the API holds, as AWS does: dropped, not refused
    assert tcp_state(machines["frontend"]["public"], 1935) == SILENT


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
        url = f"rtmp://{machines['frontend']['private']}/live/test{query}"
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
