"""The README's pictures, taken on a running lab (`make lab`), never drawn by hand: OBS
Studio's Settings > Stream filled in as the README says, OBS live to the lab's ingest, and
the player page playing what OBS sends.

    .venv/bin/python scripts/readme_screenshots.py [--stack lab]    # writes docs/images/*.png

OBS runs as the tests run it (livestream_probes.obs: Debian's obs-studio, trusting the lab's
ACME root alone), here on an X display of this script's own with its preview on, so that
its window can be photographed (ffmpeg's x11grab) and its Settings button pressed
(xdotool: `apt-get install xdotool`). The stream key is blanked in the pictures: OBS shows
it as dots, and the player's URL carries none.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from livestream_lab import config
from livestream_lab import streams as lab_streams
from livestream_probes import obs as obs_probe
from livestream_probes.browser import Browser
from livestream_probes.encoder import Encoding
from livestream_probes.hls import HlsClient
from livestream_testing import ROOT

IMAGES = ROOT / "docs" / "images"
SCREEN = (1280, 800)
STREAM = "studio"
# where OBS 29.0 draws its Settings button with its window at SCREEN
SETTINGS_BUTTON = ("1162", "720")
# ... and the Stream page in the list of its Settings dialog, moved to the top left corner
STREAM_PAGE = ("70", "68")


def grab(display: str, path: Path) -> Path:
    """The whole X screen, as a PNG."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "x11grab", "-video_size",
                    f"{SCREEN[0]}x{SCREEN[1]}", "-i", display, "-frames:v", "1", str(path)], check=True)
    return path


def xdotool(display: str, *arguments: str) -> str:
    return subprocess.run(["xdotool", *arguments], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


def wait_window(display: str, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name],
                               env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.split()[0]
        time.sleep(0.5)
    raise RuntimeError(f"no window named {name!r} on {display} after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--stack", default=os.environ.get("LIVESTREAM_STACK", "lab"))
    options = parser.parse_args()
    for program in ("xdotool", "Xvfb", "ffmpeg"):
        if not shutil.which(program):
            sys.exit(f"{program} is missing: apt-get install {program.lower()}")
    lab = config.load(options.stack)
    summary_file = lab.state_dir / "lab.json"
    if not summary_file.exists():
        sys.exit(f"no lab {options.stack} is up: make lab (LIVESTREAM_STACK={options.stack})")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    [stream] = [item for item in lab_streams.encoder_streams(lab) if item["name"] == STREAM]
    IMAGES.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as work:
        xvfb = subprocess.Popen(["Xvfb", ":77", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        display = ":77"
        try:
            obs_config = obs_probe.write_config(Path(work) / "obs", server=stream["server"], key=stream["stream_key"],
                                                encoding=Encoding(height=720, fps=30, keyframe_s=1, video_kbps=2500))
            # the preview on, the window as large as the screen: it is what is photographed
            settings = obs_config.obs_dir / "global.ini"
            text = settings.read_text(encoding="utf-8").replace("PreviewEnabled=false", "PreviewEnabled=true")
            settings.write_text(text, encoding="utf-8")
            resolve = {lab.domain: summary["frontend_address"]}
            with obs_probe.Obs(obs_config, ca_file=summary["ca_cert"], resolve=resolve, display=display) as obs:
                obs.wait_streaming(timeout=90)
                window = wait_window(display, "OBS ")
                xdotool(display, "windowsize", window, str(SCREEN[0]), str(SCREEN[1]))
                xdotool(display, "windowmove", window, "0", "0")
                time.sleep(8)  # the LIVE timer and the preview under way
                print("OBS live:", grab(display, IMAGES / "obs-live.png"))
                # what OBS sends through the backend's ladder, on the frontend, before a viewer comes
                client = HlsClient(resolve=resolve, ca_file=summary["ca_cert"])
                if not client.playlist_advances(f"{summary['player_url']}hls/{STREAM}.m3u8", within_s=60):
                    sys.exit(f"{STREAM} does not play on the lab: OBS's log:\n{obs.log_tail()}")
                with Browser(ca_file=summary["ca_cert"], resolve=resolve) as browser:
                    browser.open(f"{summary['player_url']}?stream={STREAM}")
                    browser.wait_playing(min_advance_s=3, timeout=60)
                    browser.run_async("document.body.style.zoom = '0.6'; arguments[arguments.length - 1](true);")
                    time.sleep(6)  # the viewer count's next refresh
                    print("player:", browser.screenshot(IMAGES / "player.png"))
                # Settings > Stream: the Settings button of the Controls dock (the window fills the
                # screen: it is where OBS 29 lays it out), then the Stream page of the dialog
                xdotool(display, "mousemove", "--sync", *SETTINGS_BUTTON, "click", "1")
                dialog = wait_window(display, "Settings")
                xdotool(display, "windowmove", dialog, "0", "0")
                time.sleep(2)
                xdotool(display, "mousemove", "--sync", *STREAM_PAGE, "click", "1")
                time.sleep(2)
                print("OBS's Settings > Stream:", grab(display, IMAGES / "obs-settings.png"))
        finally:
            xvfb.terminate()
            xvfb.wait(10)


if __name__ == "__main__":
    main()
