"""The browser probe: Chromium trusts the given CA through its NSS database (and nothing
else), plays a live HLS stream over HTTPS, and reads the capture time off the frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from livestream_probes import browser as browser_probe
from livestream_probes.browser import Browser
from livestream_probes.certs import throwaway_ca
from livestream_probes.timestamp import DECODER_JS, stamp_filter
from livestream_testing.probe_servers import SITE, ffmpeg_live_hls, https_server, static_handler

HLS_JS = Path(__file__).resolve().parents[2] / "roles" / "frontend" / "files" / "player" / "hls.min.js"

pytestmark = pytest.mark.skipif(not (browser_probe.available() and shutil.which("ffmpeg")),
                                reason="needs chromium, chromium-driver, libnss3-tools and ffmpeg (bindep)")

PLAYER = """<!doctype html>
<html><head><meta charset="utf-8"><title>probe player</title><script src="hls.min.js"></script></head>
<body><video muted autoplay playsinline></video>
<script>
const video = document.querySelector("video");
const hls = new Hls({ liveSyncDurationCount: 2 });
hls.on(Hls.Events.ERROR, (event, data) => { if (data.fatal) document.body.dataset.playerError = data.details; });
hls.loadSource("hls/live.m3u8");
hls.attachMedia(video);
video.play().catch(() => {});
</script></body></html>
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return throwaway_ca(tmp_path_factory.mktemp("tls"), [SITE])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PLAYER)
    if HLS_JS.exists():
        shutil.copy(HLS_JS, root / "hls.min.js")
    return root


@pytest.fixture(scope="module")
def browser(tls):
    """One Chromium for the module (it takes a second or two to start), trusting ``tls``'s CA."""
    with Browser(ca_file=tls.ca, resolve={SITE: "127.0.0.1"}) as started:
        yield started


def test_a_site_signed_by_an_untrusted_ca_is_refused(browser, site, tmp_path):
    # the browser trusts the CA it was given, not every CA: this one is another throwaway
    other = throwaway_ca(tmp_path / "other", [SITE])
    with https_server(other, static_handler(site)) as port:
        assert browser.open(f"https://{SITE}:{port}/") == "Privacy error"


@pytest.mark.skipif(not HLS_JS.exists(), reason="needs the frontend role's vendored hls.js")
def test_a_trusted_live_stream_plays_and_carries_its_capture_time(browser, tls, site, tmp_path):
    filter_chain = stamp_filter(640, 360, 30)
    with ffmpeg_live_hls(site / "hls", stamp_filter=filter_chain, fragment_s=0.5), \
            https_server(tls, static_handler(site)) as port:
        assert browser.open(f"https://{SITE}:{port}/") == "probe player"
        state = browser.wait_playing(min_advance_s=1, timeout=30)
        assert not state.failed and (state.width, state.height) == (640, 360)
        shot = browser.screenshot(tmp_path / "playing.png")
        samples = [browser.run_async(DECODER_JS) for sample in range(5)]
    assert shot.stat().st_size > 1000
    decoded = [s for s in samples if s["capture"] is not None]
    assert len(decoded) >= 4, samples
    delays = [s["displayed"] - s["capture"] for s in decoded]
    # 0.5 s fragments, hls.js two fragments behind the edge: a second or two, never negative
    assert all(0 < delay < 10_000 for delay in delays), delays
