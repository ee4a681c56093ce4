"""A real browser for the tests: headless Chromium driven by Selenium, trusting one CA
the way a user's machine would (a certificate in its NSS database), never by turning
certificate checks off.

    with Browser(ca_file="ca.pem", resolve={"live.example.test": "10.0.1.10"}) as browser:
        browser.open("https://live.example.test/")
        state = browser.wait_playing(min_advance_s=3, timeout=30)
        browser.screenshot("playback.png")
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# The player page may expose a fatal player error (hls.js's error details, say) as
# data-player-error on <body>; the probe reports it without knowing the player.
_STATE_JS = """
const video = document.querySelector(arguments[0]);
if (!video) return null;
return {
  currentTime: video.currentTime,
  paused: video.paused,
  ended: video.ended,
  readyState: video.readyState,
  error: video.error ? (video.error.code + ": " + (video.error.message || "")) : null,
  playerError: (document.body && document.body.dataset.playerError) || null,
  videoWidth: video.videoWidth,
  videoHeight: video.videoHeight,
};
"""


class BrowserError(AssertionError):
    """The page did not do what the probe waited for (an assertion for the tests)."""


@dataclass
class VideoState:
    current_time: float
    paused: bool
    ended: bool
    ready_state: int
    error: str | None
    player_error: str | None
    width: int
    height: int

    @property
    def failed(self) -> bool:
        return bool(self.error or self.player_error)


def trusting_home(ca_file: str | Path, home: Path) -> Path:
    """Make ``home`` a HOME whose ~/.pki/nssdb trusts ``ca_file`` to identify web sites:
    where Chromium on Linux looks for a user's own CAs."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    database = f"sql:{nssdb}"
    subprocess.run(["certutil", "-N", "-d", database, "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", database, "-n", "probe-ca", "-t", "C,,", "-i", str(ca_file)],
                   check=True, capture_output=True)
    return home


class Browser:
    """Headless Chromium with a fresh profile, the given CA trusted, the lab's names
    mapped to their addresses (``resolve``), and autoplay allowed."""

    def __init__(self, *, ca_file: str | Path | None = None, resolve: dict[str, str] | None = None,
                 window: tuple[int, int] = (1280, 800), video_selector: str = "video"):
        self.ca_file = ca_file
        self.resolve = dict(resolve or {})
        self.window = window
        self.video_selector = video_selector
        self.driver = None
        self._scratch: tempfile.TemporaryDirectory | None = None

    def arguments(self, profile: Path) -> list[str]:
        arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}",
            f"--window-size={self.window[0]},{self.window[1]}",
        ]
        if self.resolve:
            rules = [f"MAP {name} {address}" for name, address in self.resolve.items()]
            # Any other name must not resolve: no lookup ever leaves the machine.
            rules += ["MAP * ~NOTFOUND", "EXCLUDE localhost"]
            arguments.append(f"--host-resolver-rules={', '.join(rules)}")
        return arguments

    def __enter__(self) -> Browser:
        # selenium is a test dependency only: imported here so that the other probes load without it
        from selenium import webdriver  # pylint: disable=import-outside-toplevel
        from selenium.webdriver.chrome.service import Service  # pylint: disable=import-outside-toplevel

        self._scratch = tempfile.TemporaryDirectory(prefix="probe-browser-")
        scratch = Path(self._scratch.name)
        home = scratch / "home"
        home.mkdir()
        if self.ca_file:
            trusting_home(self.ca_file, home)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in self.arguments(scratch / "profile"):
            options.add_argument(argument)
        service = Service(executable_path=CHROMEDRIVER, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
        try:
            self.driver = webdriver.Chrome(options=options, service=service)
        except Exception:
            self._scratch.cleanup()
            raise
        self.driver.set_page_load_timeout(30)
        self.driver.set_script_timeout(10)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.driver is not None:
                self.driver.quit()
        finally:
            self.driver = None
            if self._scratch is not None:
                self._scratch.cleanup()

    def open(self, url: str) -> str:
        """Load ``url``; returns the page title (Chromium's is "Privacy error" when the
        certificate is not trusted)."""
        self.driver.get(url)
        return self.driver.title

    def video_state(self) -> VideoState | None:
        state = self.driver.execute_script(_STATE_JS, self.video_selector)
        if state is None:
            return None
        return VideoState(
            current_time=float(state["currentTime"]), paused=bool(state["paused"]), ended=bool(state["ended"]),
            ready_state=int(state["readyState"]), error=state["error"], player_error=state["playerError"],
            width=int(state["videoWidth"]), height=int(state["videoHeight"]),
        )

    def wait_playing(self, min_advance_s: float = 2.0, timeout: float = 30.0) -> VideoState:
        """Wait until the video's currentTime has moved ``min_advance_s`` seconds past the
        first moment it was moving, with no media or player error; raise BrowserError
        with the last state otherwise."""
        deadline = time.monotonic() + timeout
        first: float | None = None
        state = None
        while time.monotonic() < deadline:
            state = self.video_state()
            if state is not None and state.failed:
                raise BrowserError(f"the player failed: {state}")
            if state is not None and state.current_time > 0 and not state.paused:
                if first is None:
                    first = state.current_time
                elif state.current_time - first >= min_advance_s:
                    return state
            time.sleep(0.25)
        raise BrowserError(f"the video did not advance {min_advance_s}s within {timeout}s: {state}")

    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise BrowserError(f"no screenshot written to {path}")
        return path

    def run_async(self, script: str, *arguments):
        return self.driver.execute_async_script(script, *arguments)


def available() -> bool:
    """Whether this host has what the browser probe needs (for skip conditions)."""
    return all(shutil.which(tool) for tool in (CHROMIUM, CHROMEDRIVER, "certutil"))
