"""The service behind CloudFront, switched on as a user does it (README, "Grow past one box:
CloudFront"): site.yml with ``livestream_cdn: cloudfront`` on the service suites' lab, whose
edge realises the distribution; the viewers at their domain through the edge; the origin
answering the distribution only; playlists no staler than the behaviour allows; a publisher's
restart under a player behind the edge.

It switches the whole lab, so it runs after every other test of the service suites (tests/e2e,
then tests/faults: tests/conftest.py orders it), last, and does not switch it back: the lab is
taken down at the session's end. Switching off (the provisioning's records and groups, the
distribution's removal) is tested against the API (tests/api/test_cdn.py). The switch is what
costs (one site.yml run): once, for all the tests of this module; the player opened by the first
test keeps playing for the others, the last of which restarts the publisher under it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from ansible_collections.livestream.aws.plugins.module_utils.cdn import ORIGIN_HEADER, origin_name
from livestream_lab import lab as lab_flow
from livestream_lab.stack import cloudfront_client
from livestream_probes.hls import HlsClient, new_session
from livestream_probes.net import OPEN, tcp_state
from livestream_testing.lab import STREAM, aws_environment
from livestream_testing.service import viewer

pytestmark = pytest.mark.lab

OUTPUT = Path(__file__).resolve().parents[1] / "output" / "e2e"
# a switch's DNS change reaches the lab's public DNS within a few of the edge's rounds (2 s each)
DNS_WAIT_S = 30
# how long the playlists are compared through the edge and at the origin
STALENESS_WATCH_S = 8
# after the publisher's restart: its new session through the edge, then the player playing it
PUBLISHED_AGAIN_S = 30
PLAYER_RECOVERY_S = 45


def resolved(name: str) -> str | None:
    """What the lab's public DNS (the host's /etc/hosts block, kept by the lab) answers for ``name``."""
    try:
        return socket.gethostbyname(name)
    except OSError:
        return None


def wait_resolves(name: str, address: str, timeout: float = DNS_WAIT_S) -> str | None:
    deadline = time.monotonic() + timeout
    while (answer := resolved(name)) != address and time.monotonic() < deadline:
        time.sleep(0.5)
    return answer


def site(lab_config, lab, cdn: str, log_name: str) -> float:
    """site.yml the way the lab's bring-up runs it (the lab's inventory, its API's environment
    and settings), with ``livestream_cdn`` on top; its seconds. The output goes to
    tests/output/e2e/<log_name>.log."""
    vpc = ipaddress.ip_network(lab_flow.State(lab_config)["vpc_cidr"])
    extra_vars = {**lab_flow.configure_vars(lab_config, vpc, lab), "livestream_cdn": cdn}
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", lab["inventory"], str(lab_flow.SITE), "-e", json.dumps(extra_vars)],
                            env={**os.environ, **aws_environment(lab_config)}, cwd=lab_config.state_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / f"{log_name}.log").write_text(result.stdout)
    assert result.returncode == 0, f"site.yml with livestream_cdn={cdn} failed:\n{result.stdout[-3000:]}"
    return time.monotonic() - started


def distributions(lab_config, domain: str) -> list[dict]:
    """The lab API's distributions that serve ``domain``, with their configuration."""
    cloudfront = cloudfront_client(aws_environment(lab_config))
    found = []
    for item in cloudfront.list_distributions()["DistributionList"].get("Items", []) or []:
        if domain in (item.get("Aliases") or {}).get("Items", []):
            found.append(cloudfront.get_distribution_config(Id=item["Id"])["DistributionConfig"])
    return found


@pytest.fixture(scope="module")
def cdn(lab_config, lab):
    """The service behind the lab's CloudFront (site.yml with livestream_cdn: cloudfront)."""
    domain, origin = lab["domain"], origin_name(lab["domain"])
    assert resolved(domain) == lab["frontend_address"], "the lab is not as the other suites leave it: no CDN"
    print(f"switching on: {site(lab_config, lab, 'cloudfront', 'cdn-on'):.0f} s")
    [config] = distributions(lab_config, domain)
    secret = (lab_config.state_dir / "credentials" / "cdn-origin-secret").read_text().split()[0]
    # the header as curl reads it from a file: never on a command line
    with tempfile.NamedTemporaryFile("w", prefix="cdn-origin-header-", suffix=".txt") as header:
        os.chmod(header.name, 0o600)
        header.write(f"{ORIGIN_HEADER}: {secret}\n")
        header.flush()
        yield {"domain": domain, "origin": origin, "config": config, "header_file": header.name,
               "edge": wait_resolves(domain, lab["edge_address"])}


@pytest.fixture(scope="module")
def player(cdn, lab):
    """Chromium on the lab's internet, trusting the lab's ACME root only, finding the viewers'
    domain where the lab's public DNS says (the edge), the player page open: it keeps playing
    from one test to the next."""
    with viewer(lab, cdn["edge"] or lab["edge_address"]) as browser:
        yield {"browser": browser, "title": browser.open(lab["player_url"])}


def from_the_edge(lab_config, lab, cdn, path: str, *, with_secret: bool) -> tuple[int, str]:
    """GET https://origin.<domain><path> from the edge's namespace (its address is in the prefix
    list the origin's security group allows), with or without the distribution's header: the
    status and the body."""
    command = ["ip", "netns", "exec", lab_config.edge_netns, "curl", "-sS", "--noproxy", "*", "--max-time", "5",
               "--cacert", lab["ca_cert"], "--resolve", f"{cdn['origin']}:443:{lab['frontend_address']}",
               "-o", "-", "-w", "\n%{http_code}", f"https://{cdn['origin']}{path}"]
    if with_secret:
        command[-1:-1] = ["-H", f"@{cdn['header_file']}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    assert result.returncode == 0, f"curl from the edge's namespace: {result.stderr}"
    body, _newline, status = result.stdout.rpartition("\n")
    return int(status), body


def media_sequence(text: str) -> int:
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))


def test_viewers_play_the_stream_through_the_edge_over_trusted_https(cdn, player, lab):
    assert cdn["edge"] == lab["edge_address"], f"{cdn['domain']} resolves to {cdn['edge']}, not to the edge"
    page = requests.get(lab["player_url"], verify=lab["ca_cert"], timeout=10)
    assert page.status_code == 200 and "cloudfront.net (CloudFront)" in page.headers.get("Via", ""), page.headers
    # Chromium titles its certificate error page "Privacy error": the edge's chain is trusted
    assert player["title"] == "Live"
    state = player["browser"].wait_playing(min_advance_s=3, timeout=60)
    player["browser"].screenshot(OUTPUT / "cdn-playback.png")
    assert not state.failed, state


def test_the_origin_answers_the_distribution_only(cdn, lab_config, lab):
    playlist = f"/hls/{STREAM}.m3u8"
    for path in ("/", playlist):
        status, _body = from_the_edge(lab_config, lab, cdn, path, with_secret=False)
        assert status == 403, f"the origin answers {path} without the distribution's header with {status}"
    status, body = from_the_edge(lab_config, lab, cdn, playlist, with_secret=True)
    assert status == 200 and body.startswith("#EXTM3U"), (status, body[:200])
    # the internet reaches the origin's HTTP (Let's Encrypt, the redirect), not its HTTPS
    assert tcp_state(lab["frontend_address"], 443) != OPEN
    assert tcp_state(lab["frontend_address"], 80) == OPEN


def test_a_playlist_through_the_edge_is_never_staler_than_its_behaviour_allows(cdn, lab_config, lab):
    """Each poll reads the origin's playlist (from the edge's namespace, with the header), then
    the edge's (as a viewer): the edge's may be older than the origin's of a moment before by
    no more than the playlists' behaviour lets it keep one (MaxTTL)."""
    [playlists] = [b for b in cdn["config"]["CacheBehaviors"]["Items"] if b["PathPattern"] == "*.m3u8"]
    client = HlsClient(resolve={cdn["domain"]: lab["edge_address"]}, ca_file=lab["ca_cert"])
    media = client.playlist(f"{lab['player_url']}hls/{STREAM}.m3u8")
    url = media.variants[0].uri if media.is_master else media.url
    path = "/" + url.split("/", 3)[3]
    # fragments the edge may lag behind: none when the playlist is not cached (MaxTTL 0), else
    # as many as the behaviour's MaxTTL (plus the second nginx rounds expiry to) holds
    target = client.media_playlist(url).target_duration
    allowed = 0 if playlists["MaxTTL"] == 0 else int((playlists["MaxTTL"] + 1) / target) + 1
    seen = []
    end = time.monotonic() + STALENESS_WATCH_S
    while time.monotonic() < end:
        status, body = from_the_edge(lab_config, lab, cdn, path, with_secret=True)
        assert status == 200, status
        at_origin = media_sequence(body)
        through_edge = client.media_playlist(url).media_sequence
        seen.append((at_origin, through_edge))
        time.sleep(0.25)
    stale = [(origin, edge) for origin, edge in seen if edge < origin - allowed]
    assert not stale, f"the edge served playlists older than the origin's (origin, edge): {stale}"
    assert seen[-1][1] > seen[0][1], f"the playlist did not advance through the edge: {seen}"


PROGRESS_JS = """
const video = document.querySelector("video");
return {time: video.currentTime,
        buffered: video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0};
"""


def test_a_publisher_restart_does_not_freeze_the_player_behind_the_edge(cdn, player, lab, machines, ssh):
    """The backend's stream unit restarted under a playing player: its new session comes
    through the edge (nginx-rtmp starts it with a discontinuity, and the playlists are missing
    a moment, errors the edge keeps 1 s), and the player goes on to play it: it plays more
    than it had buffered when the publisher went."""
    browser = player["browser"]
    browser.wait_playing(min_advance_s=1, timeout=30)
    client = HlsClient(resolve={cdn["domain"]: lab["edge_address"]}, ca_file=lab["ca_cert"], timeout=2)
    url = f"{lab['player_url']}hls/{STREAM}.m3u8"
    reference = client.media_playlist(url)
    before = browser.driver.execute_script(PROGRESS_JS)
    started = time.monotonic()
    restarted = ssh(machines["backend"]["name"], f"sudo -n systemctl restart livestream-stream@{STREAM}.service")
    assert restarted.returncode == 0, restarted.stderr
    again = client.watch(url, PUBLISHED_AGAIN_S, until=new_session, since=reference, started=started, poll_s=0.25)
    assert again, f"no new publishing session through the edge after the restart: {again.explain()}"

    # played: the video's time moving forward, at most as fast as a live player's catch-up rate
    # (a jump to the live edge is not playing)
    ahead = before["buffered"] - before["time"]
    played, last, last_at = 0.0, before["time"], started
    deadline = started + PLAYER_RECOVERY_S
    while played < ahead + 3 and time.monotonic() < deadline:
        time.sleep(0.25)
        state = browser.video_state()
        assert state is not None and not state.failed, f"the player failed after the restart: {state}"
        now = time.monotonic()
        played += min(max(0.0, state.current_time - last), 1.5 * (now - last_at))
        last, last_at = state.current_time, now
    assert played >= ahead + 3, (f"the player froze behind the edge: {played:.1f} s played in {PLAYER_RECOVERY_S} s"
                                 f" after the restart, with {ahead:.1f} s buffered then; last {browser.video_state()}")
