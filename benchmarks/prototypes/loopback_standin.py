"""Prototype: the probes against a stand-in of the service on 127.0.0.1 only.

Debian's nginx with the RTMP module (HLS out, HTTPS with a throwaway CA), ffmpeg pushing
the time-stamped test pattern over RTMP, hls.js in a minimal page. For each setting
(the original design's 5 s fragments with nginx-rtmp's default 30 s playlist and hls.js
defaults, against ours: 1 s fragments, a 4-fragment playlist, two fragments behind the
edge) it checks that the playlist advances and the video plays in Chromium over trusted
HTTPS, samples the glass-to-glass latency, and runs a few simulated viewers.

Not a benchmark of the service (the lab's machines are): it proves the instruments and
shows how bench_*.py will use them. Needs root (nginx), nginx-light, libnginx-mod-rtmp,
ffmpeg, chromium, chromium-driver, libnss3-tools, and hls.min.js (HLS_JS below, or the
frontend role's copy). Everything lives under a temporary directory and stops at the end.

    .venv/bin/python benchmarks/prototypes/loopback_standin.py [--samples 30] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

# pylint: disable=wrong-import-position
from probes.browser import Browser  # noqa: E402
from probes.certs import throwaway_ca  # noqa: E402
from probes.hls import HlsClient, process_cpu_seconds, run_viewers  # noqa: E402
from probes.timestamp import DECODER_JS, segment_capture_times, stamp_filter  # noqa: E402

SITE = "live.standin.test"
RTMP_PORT, HTTPS_PORT = 19350, 18443
HLS_JS = Path(os.environ.get("HLS_JS", ROOT / "roles" / "frontend" / "files" / "player" / "hls.min.js"))
WIDTH, HEIGHT, RATE = 1280, 720, 30
PAGE_LOADS = 3

SETTINGS = {
    # nginx-rtmp's defaults are hls_fragment 5s and hls_playlist_length 30s
    "original": {"fragment_s": 5, "playlist_s": 30, "hls_js": "{}"},
    "ours": {"fragment_s": 1, "playlist_s": 4, "hls_js": "{ liveSyncDurationCount: 2 }"},
    # a candidate, not the role's: one fragment behind the edge, catching up when behind
    "edge": {"fragment_s": 1, "playlist_s": 4, "hls_js": "{ liveSyncDurationCount: 1, maxLiveSyncPlaybackRate: 1.2 }"},
}

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
user root;
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
rtmp {{
  server {{
    listen 127.0.0.1:{rtmp_port};
    application live {{
      live on;
      record off;
      hls on;
      hls_path {run}/hls;
      hls_fragment {fragment_s}s;
      hls_playlist_length {playlist_s}s;
    }}
  }}
}}
http {{
  access_log off;
  types {{ text/html html; application/javascript js; application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  server {{
    listen 127.0.0.1:{https_port} ssl;
    server_name {site};
    ssl_certificate {tls}/server.pem;
    ssl_certificate_key {tls}/server.key;
    root {run}/www;
    location /hls/ {{ alias {run}/hls/; add_header Cache-Control no-cache; }}
  }}
}}
"""

PLAYER = """<!doctype html>
<html><head><meta charset="utf-8"><title>stand-in player</title><script src="hls.min.js"></script></head>
<body style="margin:0"><video muted autoplay playsinline></video>
<script>
const video = document.querySelector("video");
const hls = new Hls({hls_js});
hls.on(Hls.Events.ERROR, (event, data) => {{ if (data.fatal) document.body.dataset.playerError = data.details; }});
hls.loadSource("hls/test.m3u8");
hls.attachMedia(video);
video.play().catch(() => {{}});
</script></body></html>
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run_setting(name: str, setting: dict, scratch: Path, tls, samples: int) -> dict:
    run = scratch / name
    (run / "hls").mkdir(parents=True)
    (run / "www").mkdir()
    shutil.copy(HLS_JS, run / "www" / "hls.min.js")
    (run / "www" / "index.html").write_text(PLAYER.format(hls_js=setting["hls_js"]))
    conf = run / "nginx.conf"
    conf.write_text(NGINX_CONF.format(run=run, tls=tls.certificate.parent, site=SITE, rtmp_port=RTMP_PORT,
                                      https_port=HTTPS_PORT, **setting))
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(run)])  # pylint: disable=consider-using-with
    gop = RATE * setting["fragment_s"]
    ffmpeg = subprocess.Popen([  # pylint: disable=consider-using-with
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}",
        "-vf", stamp_filter(WIDTH, HEIGHT, RATE), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-b:v", "2500k", "-pix_fmt", "yuv420p",
        "-f", "flv", f"rtmp://127.0.0.1:{RTMP_PORT}/live/test"])
    result: dict = {"setting": name, **{k: v for k, v in setting.items() if k != "hls_js"},
                    "hls_js_config": setting["hls_js"]}
    try:
        url = f"https://{SITE}:{HTTPS_PORT}/hls/test.m3u8"
        client = HlsClient(resolve={SITE: "127.0.0.1"}, ca_file=str(tls.ca))
        deadline = time.monotonic() + 4 * setting["fragment_s"] + 10
        while not (run / "hls" / "test.m3u8").exists():
            if time.monotonic() > deadline or ffmpeg.poll() is not None or nginx.poll() is not None:
                raise RuntimeError(f"{name}: no playlist (see {run}/error.log)")
            time.sleep(0.2)
        advance = client.playlist_advances(url, within_s=setting["fragment_s"] * 2 + 2)
        result["playlist_advances"] = {"advanced": bool(advance), "elapsed_s": round(advance.elapsed_s, 2)}

        # the part of the latency spent before any player: a segment's newest frame's age
        # when the segment appears in the playlist (the player can only be later)
        ages = []
        for arrival in client.new_segments(url, count=3, timeout=4 * setting["fragment_s"] + 5):
            captures = [c for c in segment_capture_times(arrival.body) if c is not None]
            if captures:
                ages.append(arrival.listed_at * 1000 - max(captures))
        result["newest_frame_age_when_listed_ms"] = [round(age) for age in ages]

        # hls.js holds the position it joined at (it does not catch up by default), so the
        # latency depends on when in a fragment the page loaded: sample over several loads
        latencies, unreadable, per_load = [], 0, []
        with Browser(ca_file=tls.ca, resolve={SITE: "127.0.0.1"}) as browser:
            for load in range(PAGE_LOADS):
                title = browser.open(f"https://{SITE}:{HTTPS_PORT}/")
                state = browser.wait_playing(min_advance_s=2, timeout=6 * setting["fragment_s"] + 20)
                if load == 0:
                    browser.screenshot(scratch / f"{name}.png")
                these = []
                while len(these) < -(-samples // PAGE_LOADS):
                    sample = browser.run_async(DECODER_JS)
                    if sample["capture"] is None:
                        unreadable += 1
                    else:
                        these.append(sample["displayed"] - sample["capture"])
                    time.sleep(0.5)  # spread the samples over the fragments
                latencies += these
                per_load.append(round(statistics.median(these)))
        result["browser"] = {"title": title, "current_time": round(state.current_time, 2),
                             "screenshot": str(scratch / f"{name}.png")}
        result["latency_ms"] = {"samples": len(latencies), "unreadable": unreadable,
                                "median": round(statistics.median(latencies)),
                                "p95": round(percentile(latencies, 0.95)),
                                "min": round(min(latencies)), "max": round(max(latencies)),
                                "median_per_page_load": per_load}

        load = run_viewers(url, 10, duration_s=max(10, 3 * setting["fragment_s"]), client=client,
                           cpu=process_cpu_seconds(root_pid=nginx.pid))
        result["viewers"] = load.summary()
    finally:
        for process in (ffmpeg, nginx):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--samples", type=int, default=30, help="latency samples per setting")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here too")
    parser.add_argument("--settings", default="original,ours", help=f"comma-separated, of: {', '.join(SETTINGS)}")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-standin-") as directory:
        scratch = Path(directory)
        tls = throwaway_ca(scratch / "tls", [SITE])
        results = [run_setting(name, SETTINGS[name], scratch, tls, arguments.samples)
                   for name in arguments.settings.split(",")]
        keep = Path(tempfile.gettempdir()) / "probe-standin-screenshots"
        keep.mkdir(exist_ok=True)
        for result in results:
            shot = Path(result["browser"]["screenshot"])
            result["browser"]["screenshot"] = str(shutil.copy(shot, keep / shot.name))
    for result in results:
        latency, viewers = result["latency_ms"], result["viewers"]
        sys.stdout.write(
            f"{result['setting']:>9}: {result['fragment_s']} s fragments, {result['playlist_s']} s playlist: "
            f"glass-to-glass median {latency['median']} ms, p95 {latency['p95']} ms over {latency['samples']} samples "
            f"(per page load {latency['median_per_page_load']}); "
            f"playlist advanced in {result['playlist_advances']['elapsed_s']} s; "
            f"newest frame's age when its segment is listed {result['newest_frame_age_when_listed_ms']} ms; "
            f"{viewers['viewers']} viewers: {viewers['segments']} segments, {viewers['late_segments']} late, "
            f"nginx {viewers['server_cpu_s']} CPU s\n")
    if arguments.out:
        arguments.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
