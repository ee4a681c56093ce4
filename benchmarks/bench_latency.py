"""Glass-to-glass latency: from a frame entering ffmpeg on the backend to the same frame
shown by Chromium, for the original design's HLS settings and for ours, in the same run.

On a lab of its own (stack "bench-latency"), the backend's test pattern gets the capture-time
strip of probes.timestamp (through the backend role's backend_source_filter), and headless
Chromium, trusting the lab's ACME root, plays the player page over HTTPS. Every ~0.5 s the
page draws the frame being presented on a canvas and decodes the strip (DECODER_JS):
latency = the frame's display time - its capture time; the lab's machines share the host's
clock, so there is nothing to correct. Where a player joins depends on when in a fragment
the page loaded, so each arm samples several page loads, each for a fixed period from the
moment the video plays. A stall is the video waiting for data once it has played. The
part before any player (encoding, RTMP, packaging) is measured too: the age of a segment's
newest frame when the playlist first lists it.

Arms (switched with playbooks/configure.yml and extra vars, see ARMS):
  original   5 s fragments, nginx-rtmp's default 30 s playlist, hls.js's defaults
  one-second the defaults before half-second fragments: livestream_hls_fragment_seconds 1
  ours       the roles' defaults (half-second fragments, a keyframe every half second, the
             player's live sync in seconds of them)
  ingest     the roles' defaults, the stream an encoder publishes: ffmpeg on the lab's internet
             (this host) stamps the capture time and publishes over RTMPS to the frontend's
             ingest, the backend pulls it over the VPC and transcodes the ladder, the frontend
             packages it, Chromium plays it
  ingest-superfast   the same, the ladder with x264's superfast preset
  ingest-copy        the same, the backend sending the encoder's stream on as it is

Prints a table and writes benchmarks/results/latency.json; about 7 minutes on 2 cores, lab
bring-up included. The lab is taken down at the end (unless --keep).

    .venv/bin/python benchmarks/bench_latency.py [--page-loads 3] [--sample-seconds 10] [--arms ours]
        [--set 'ours={"frontend_player_target_latency_fragments": 2}']   (role variables to try in an arm)
        [--arms ours,ours:closer --set 'ours:closer={...}']   (a variant beside its arm)
        [--cdn] [--output latency.json] [--stack NAME] [--keep]

With --cdn, the lab has the CDN on (`up --cdn cloudfront`) and Chromium plays the distribution's
domain through the lab's edge: the same measurement behind CloudFront.

Figures, not a test: it fails only when the service or the browser does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time

from service_lab import RESULTS, ROOT, Service, cdn_lab, host_info, lab_arguments, service_lab
from livestream_lab import streams as lab_streams
from livestream_testing.lab import INGEST_STREAM, STREAM, stream_key

from livestream_probes.browser import Browser
from livestream_probes.encoder import Encoder, Encoding
from livestream_probes.hls import HlsClient, fresh
from livestream_probes.timestamp import DECODER_JS, segment_capture_times, stamp_filter

STACK = "bench-latency"
OUTPUT = RESULTS / "latency.json"
# the backend's test pattern with the roles' defaults: 720p at 30 frames per second
WIDTH, HEIGHT, RATE = 1280, 720, 30

ARMS = {
    "original": {
        "description": "original design: 5 s fragments, nginx-rtmp's default 30 s playlist, hls.js defaults",
        "fragment_seconds": 5,
        # nginx-rtmp's default playlist is 30 s; {} and 0: hls.js as it comes
        "overrides": {"livestream_hls_fragment_seconds": 5, "frontend_hls_playlist_fragments": 6,
                      "frontend_player_hls_config": {}, "frontend_player_join_fragments": 0,
                      "frontend_player_target_latency_fragments": 0},
    },
    # the defaults before half-second fragments: 1 s fragments (the player's settings follow them)
    "one-second": {
        "description": "one-second fragments: livestream_hls_fragment_seconds 1, the roles' defaults otherwise",
        "fragment_seconds": 1,
        "overrides": {"livestream_hls_fragment_seconds": 1},
    },
    "ours": {
        "description": "ours: the roles' defaults (half-second fragments, the player's live sync in seconds of them)",
        "fragment_seconds": None,  # the roles' default, read from the playlist served
        "overrides": {},
    },
    # the capture time stamped by an encoder on the lab's internet, not by the backend
    "ingest": {
        "description": "ingest: an encoder on the lab's internet publishes over RTMPS to the frontend's ingest, "
                       "the backend pulls it and transcodes the ladder (the default stream studio), back to "
                       "the frontend, to Chromium",
        "fragment_seconds": None,  # the roles' default, read from the playlist served
        "overrides": {},
        "stream": INGEST_STREAM,
    },
    # the same, the ladder encoded with x264's next faster preset (a fifth less CPU, measured:
    # docs/performance.md): what a backend with little CPU to spare gains from it
    "ingest-superfast": {
        "description": "ingest, superfast: the same path, the ladder with x264's superfast preset",
        "fragment_seconds": None,  # the roles' default, read from the playlist served
        "overrides": {"backend_x264_preset": "superfast"},
        "stream": INGEST_STREAM,
    },
    # the same path without the ladder: the backend sends the encoder's stream on as it is
    # (its keyframes, a second apart, decide the fragments)
    "ingest-copy": {
        "description": "ingest, copy: the same path, the backend sending the encoder's stream on as it is",
        "fragment_seconds": 1,
        "overrides": {},
        "stream": INGEST_STREAM,
        "mode": "copy",
        "keyframe_s": 1,
    },
}
# the ingest path's aims (issue: median under 3.5 s, p95 under 4.5 s, no stalls)
AIM_INGEST_MS = {"median": 3500, "p95": 4500}
# ours (half-second fragments; issue: median under 2 s, p95 under 2.5 s, no stalls)
AIM_MS = {"median": 2000, "p95": 2500}
# every aim: median and p95 under these, and no stall
AIMS = {"ours": AIM_MS, "ingest": AIM_INGEST_MS}

# Installed as soon as a page has loaded, before playback starts: counts the times the video
# runs out of data once it has played (a "waiting" event after the first "playing") and for
# how long, and the player's non-fatal errors (bufferStalledError...) once the page's hls.js
# instance exists (player.js's global `hls`).
WATCH_JS = """
const video = document.querySelector("video");
const probe = window.latencyProbe = { started: null, stalls: [], since: null, playerErrors: {} };
video.addEventListener("waiting", () => {
  if (probe.started !== null && probe.since === null) probe.since = performance.now();
});
video.addEventListener("playing", () => {
  const now = performance.now();
  if (probe.started === null) probe.started = now;
  if (probe.since !== null) {
    probe.stalls.push({ atS: (probe.since - probe.started) / 1000, ms: now - probe.since });
    probe.since = null;
  }
});
let watched = null;
setInterval(() => {
  if (typeof hls === "undefined" || !hls || hls === watched || !window.Hls) return;
  watched = hls;
  hls.on(Hls.Events.ERROR, (event, data) => {
    probe.playerErrors[data.details] = (probe.playerErrors[data.details] || 0) + 1;
  });
}, 20);
"""

READ_JS = """
const video = document.querySelector("video");
const probe = window.latencyProbe;
const player = (typeof hls !== "undefined" && hls) ? hls : null;
const stalls = probe.stalls.slice();
if (probe.since !== null) {
  stalls.push({ atS: (probe.since - probe.started) / 1000, ms: performance.now() - probe.since, ongoing: true });
}
return {
  stalls: stalls,
  playerErrors: probe.playerErrors,
  fatalError: document.body.dataset.playerError || null,
  playbackRate: video.playbackRate,
  targetLatency: player && player.targetLatency !== undefined ? player.targetLatency : null,
  // the settings the page gave the player (frontend_player_*), and what hls.js made of them
  pageSettings: { hlsConfig: JSON.parse(video.dataset.hlsConfig || "{}"),
                  fragmentSeconds: Number(video.dataset.fragmentSeconds || 0),
                  joinFragments: Number(video.dataset.joinFragments || 0),
                  targetLatencyFragments: Number(video.dataset.targetLatencyFragments || 0) },
  config: player ? { liveSyncDurationCount: player.config.liveSyncDurationCount,
                     liveSyncDuration: player.config.liveSyncDuration === undefined ? null : player.config.liveSyncDuration,
                     maxLiveSyncPlaybackRate: player.config.maxLiveSyncPlaybackRate } : null,
};
"""


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def settle(client: HlsClient, url: str, timeout: float) -> float:
    """Wait until the media playlist lists only segments published after this call began
    (after configure.yml returned: the arm's settings are in force), at least 3 of them
    (``fresh``, module_utils/hls.py). Returns the seconds it took."""
    settled = client.watch(url, timeout, until=lambda before, current: fresh(before, current, at_least=3))
    if not settled:
        raise RuntimeError(f"{url}: the playlist still lists segments from before the new settings after "
                           f"{timeout:.0f} s: {settled.explain()}")
    return settled.elapsed_s


def listing_ages(client: HlsClient, url: str, fragment_seconds: float, count: int = 2) -> list[int]:
    """For the next `count` segments: how old (ms) the segment's newest frame is when the
    playlist first lists it: the latency before any player."""
    ages = []
    for arrival in client.new_segments(url, count=count, timeout=(count + 2) * fragment_seconds + 5):
        captures = [capture for capture in segment_capture_times(arrival.body) if capture is not None]
        if captures:
            ages.append(round(arrival.listed_at * 1000 - max(captures)))
    return ages


def sample_page_load(browser: Browser, player_url: str, sample_seconds: float, interval: float,
                     start_timeout: float) -> dict:
    opened = time.monotonic()
    title = browser.open(player_url)
    if not browser.driver.find_elements("css selector", "video"):
        raise RuntimeError(f"{player_url}: no player page (title {title!r}): {browser.driver.page_source[:300]!r}")
    browser.driver.execute_script(WATCH_JS)
    state = browser.wait_playing(min_advance_s=1, timeout=start_timeout)
    to_play = time.monotonic() - opened
    latencies, timeline, unreadable = [], [], 0
    end = time.monotonic() + sample_seconds
    while time.monotonic() < end:
        taken = time.monotonic()
        sample = browser.run_async(DECODER_JS)
        if sample.get("capture") is None:
            unreadable += 1
        else:
            latencies.append(sample["displayed"] - sample["capture"])
            timeline.append([round(taken - opened, 1), round(latencies[-1])])
        time.sleep(max(0.0, interval - (time.monotonic() - taken)))
    watched = browser.driver.execute_script(READ_JS)
    return {"title": title, "seconds_to_play": round(to_play, 1), "size": [state.width, state.height],
            "latencies": latencies, "timeline": timeline, "unreadable": unreadable, **watched}


def encoder_for(service: Service, arm: dict, seconds: float) -> Encoder | None:
    """For an arm of an encoder's stream: ffmpeg on the lab's internet (this host) publishing the
    stamped pattern over RTMPS, as a streamer's encoder would (keyframes every 2 s: the backend's
    ladder decides the fragments); None for the backend's own test pattern."""
    if "stream" not in arm:
        return None
    [stream] = [item for item in lab_streams.encoder_streams(service.lab) if item["name"] == arm["stream"]]
    encoding = Encoding(height=HEIGHT, fps=RATE, keyframe_s=arm.get("keyframe_s", 2),
                        video_filter=stamp_filter(WIDTH, HEIGHT, RATE))
    return Encoder(f"{stream['server']}/{stream['stream_key']}", seconds=seconds, ca_file=service.summary["ca_cert"],
                   encoding=encoding)


def measure_arm(service: Service, name: str, arm: dict, *, page_loads: int, sample_seconds: float,
                interval: float = 0.5, extra: dict | None = None, via_edge: bool = False) -> dict:
    stream = arm.get("stream", STREAM)
    # the backend stamps its own test pattern; an encoder's stream is stamped by the encoder
    stamping = {} if "stream" in arm else {"backend_source_filter": stamp_filter(WIDTH, HEIGHT, RATE)}
    overrides = {**stamping, **arm["overrides"], **(extra or {})}
    if "mode" in arm:
        # the lab's default streams, the encoder's in the arm's mode (their keys as generated)
        overrides["livestream_streams"] = [
            {"name": STREAM, "source": "testsrc", "mode": "copy", "key": stream_key(service.lab, STREAM)},
            {"name": stream, "source": "ingest", "mode": arm["mode"], "key": stream_key(service.lab, stream)}]
    started = time.monotonic()
    service.configure(**overrides)
    configured = time.monotonic() - started

    summary = service.summary
    # the viewers' way in: the CDN's edge when it is on, else the frontend
    resolve = {summary["domain"]: summary["edge_address" if via_edge else "frontend_address"]}
    client = HlsClient(resolve=resolve, ca_file=summary["ca_cert"])
    url = f"{summary['player_url']}hls/{stream}.m3u8"
    # the arm's fragment length, else the roles' default as the playlist shows it (below)
    fragment = arm["fragment_seconds"]
    encoder = encoder_for(service, arm, seconds=page_loads * (sample_seconds + 60) + 120)
    if encoder is not None:
        encoder.start()
    try:
        settled = settle(client, url, timeout=10 * (fragment or 1) + 60)
        playlist = client.media_playlist(url)
        if fragment is None:
            fragment = round(statistics.median(segment.duration for segment in playlist.segments), 2)
        ages = listing_ages(client, url, fragment)

        loads = []
        with Browser(ca_file=summary["ca_cert"], resolve=resolve) as browser:
            for _load in range(page_loads):
                loads.append(sample_page_load(browser, f"{summary['player_url']}?stream={stream}", sample_seconds,
                                              interval, start_timeout=6 * fragment + 30))
    finally:
        if encoder is not None:
            encoder.stop()
    latencies = [value for load in loads for value in load["latencies"]]
    if not latencies:
        raise RuntimeError(f"{name}: no frame's strip could be read")
    errors: dict[str, int] = {}
    for load in loads:
        for detail, count in load["playerErrors"].items():
            errors[detail] = errors.get(detail, 0) + count
    settings = {key: value for key, value in overrides.items() if key not in ("backend_source_filter", "livestream_streams")}
    if "livestream_streams" in overrides:  # never the keys
        settings["livestream_streams"] = [{"name": item["name"], "mode": item["mode"]} for item in overrides["livestream_streams"]]
    return {
        "description": arm["description"],
        "stream": stream,
        "fragment_seconds": fragment,
        "overrides": settings,
        "playlist": {"target_duration_s": playlist.target_duration, "segments": len(playlist.segments),
                     "segment_durations_s": [round(segment.duration, 3) for segment in playlist.segments]},
        "player": {"page": loads[-1]["pageSettings"], "hls_js_at_end": loads[-1]["config"]},
        "latency_ms": {
            "samples": len(latencies),
            "unreadable": sum(load["unreadable"] for load in loads),
            "median": round(statistics.median(latencies)),
            "p95": round(percentile(latencies, 0.95)),
            "min": round(min(latencies)),
            "max": round(max(latencies)),
            "median_per_page_load": [round(statistics.median(load["latencies"])) for load in loads if load["latencies"]],
            # where each page load had got to: the last 2 s of its sampling period
            "median_at_end_per_page_load": [round(statistics.median(load["latencies"][-round(2 / interval):])) for load in loads if load["latencies"]],
        },
        "stalls": sum(len(load["stalls"]) for load in loads),
        "stalled_ms": round(sum(stall["ms"] for load in loads for stall in load["stalls"])),
        # per page load: when (seconds after playback began) and how long (ms) the video waited
        "stall_events": [[[round(stall["atS"], 1), round(stall["ms"])] for stall in load["stalls"]] for load in loads],
        "player_errors": errors,
        "fatal_errors": [load["fatalError"] for load in loads if load["fatalError"]],
        "target_latency_s": [None if load["targetLatency"] is None else round(load["targetLatency"], 2) for load in loads],
        "playback_rate_at_end": [load["playbackRate"] for load in loads],
        "seconds_to_play": [load["seconds_to_play"] for load in loads],
        "newest_frame_age_when_listed_ms": ages,
        # per page load: [seconds since the page was opened, latency ms] of every sample
        "samples_per_page_load": [load["timeline"] for load in loads],
        "seconds": {"configure": round(configured, 1), "settle": round(settled, 1),
                    "total": round(time.monotonic() - started, 1)},
    }


def print_table(report: dict) -> None:
    print(f"glass-to-glass latency on the lab ({report['host']['cpus']} CPUs, load "
          f"{report['host']['load_average']['before']} before, {report['host']['load_average']['after']} after)")
    print(f"  {'arm':<12} {'median':>8} {'p95':>8} {'min':>8} {'max':>8} {'samples':>8} {'stalls':>7}"
          "   per page load: median, last 2 s; before the player")
    for name, arm in report["arms"].items():
        latency = arm["latency_ms"]
        loads = ", ".join(f"{value / 1000:.2f}" for value in latency["median_per_page_load"])
        ends = ", ".join(f"{value / 1000:.2f}" for value in latency["median_at_end_per_page_load"])
        ages = ", ".join(f"{value / 1000:.2f}" for value in arm["newest_frame_age_when_listed_ms"])
        print(f"  {name:<12} {latency['median'] / 1000:>6.2f} s {latency['p95'] / 1000:>6.2f} s "
              f"{latency['min'] / 1000:>6.2f} s {latency['max'] / 1000:>6.2f} s {latency['samples']:>8} {arm['stalls']:>7}"
              f"   {loads} s; {ends} s; {ages} s")
    for arm, aim in report["aim"].items():
        print(f"  aim: median under {aim['median_ms'] / 1000:.1f} s, p95 under {aim['p95_ms'] / 1000:.1f} s, "
              f"no stalls with {arm}: {'met' if aim['met'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--page-loads", type=int, default=3, help="page loads per arm (default 3)")
    parser.add_argument("--sample-seconds", type=float, default=10.0,
                        help="seconds each page load is sampled, every 0.5 s (default 10)")
    parser.add_argument("--set", action="append", default=[], metavar="ARM=JSON",
                        help="role variables to try in an arm, on top of its own, e.g. "
                             "'ours={\"frontend_player_target_latency_fragments\": 2}' (repeatable)")
    parser.add_argument("--arms", default="original,one-second,ours,ingest",
                        help=f"comma-separated, of: {', '.join(ARMS)}; ARM:LABEL is a variant of ARM "
                             "measured beside it, with its own --set")
    parser.add_argument("--cdn", action="store_true",
                        help="the lab with the CDN on (up --cdn cloudfront), Chromium playing through its edge")
    parser.add_argument("--output", default=OUTPUT.name, help="the results' file in benchmarks/results (default %(default)s)")
    lab_arguments(parser, STACK, reuse=False)  # its arms reconfigure the service: a lab of its own
    arguments = parser.parse_args()
    names = arguments.arms.split(",")
    unknown = [name for name in names if name.split(":", 1)[0] not in ARMS]
    if unknown:
        parser.error(f"--arms: unknown {', '.join(unknown)} (known: {', '.join(ARMS)})")
    output = RESULTS / arguments.output
    extra: dict[str, dict] = {}
    for setting in arguments.set:
        name, text = setting.split("=", 1) if "=" in setting else (setting, "")
        if name not in names:
            parser.error(f"--set {setting}: {name!r} is not one of the arms measured (--arms {arguments.arms})")
        try:
            extra[name] = {**extra.get(name, {}), **json.loads(text)}
        except ValueError as error:
            parser.error(f"--set {setting}: not JSON after {name}= ({error})")

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    lab = cdn_lab(arguments.stack, reuse=False, keep=arguments.keep) if arguments.cdn else \
        service_lab(arguments.stack, keep=arguments.keep)
    with lab as service:
        lab_seconds = time.monotonic() - started
        arms = {name: measure_arm(service, name, ARMS[name.split(":", 1)[0]], page_loads=arguments.page_loads,
                                  sample_seconds=arguments.sample_seconds,
                                  extra=extra.get(name), via_edge=arguments.cdn)
                for name in names}
    load_after = os.getloadavg()[0]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(load_before, load_after),
        "scope": "the lab's full service: backend ffmpeg -> RTMP -> frontend nginx-rtmp HLS -> HTTPS -> "
                 + ("the lab's CDN edge (CloudFront) -> HTTPS -> Chromium" if arguments.cdn else "Chromium"),
        "method": {"stream": f"test pattern {WIDTH}x{HEIGHT} at {RATE} fps with the capture-time strip",
                   "page_loads": arguments.page_loads, "sample_seconds_per_load": arguments.sample_seconds,
                   "sample_interval_s": 0.5, "browser": "headless Chromium, hls.js of the player page"},
        "arms": arms,
        "aim": {name: {"median_ms": aim["median"], "p95_ms": aim["p95"],
                       "met": arms[name]["latency_ms"]["median"] < aim["median"]
                       and arms[name]["latency_ms"]["p95"] < aim["p95"] and arms[name]["stalls"] == 0}
                for name, aim in AIMS.items() if name in arms},
        "seconds": {"lab": round(lab_seconds, 1), "total": round(time.monotonic() - started, 1)},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"written to {output.relative_to(ROOT)} in {report['seconds']['total']:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
