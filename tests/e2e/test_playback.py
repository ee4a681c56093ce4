"""A viewer's proof that the service works: a real browser, trusting only the lab's ACME
root the way a user's machine trusts Let's Encrypt, plays the live stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestream_testing.service import viewer


pytestmark = pytest.mark.lab

SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "e2e"


def test_the_player_page_plays_the_live_stream_in_a_browser_over_https(lab):
    with viewer(lab) as browser:
        title = browser.open(lab["player_url"])
        # Chromium titles its certificate error page "Privacy error": the ACME chain is trusted
        assert title == "Live"
        state = browser.wait_playing(min_advance_s=3, timeout=60)
        screenshot = browser.screenshot(SCREENSHOTS / "playback.png")
    print(f"playback screenshot: {screenshot}")
    assert not state.failed
    assert (state.width, state.height) == (1280, 720)
    assert screenshot.stat().st_size > 0
