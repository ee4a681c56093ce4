"""CloudFront in front of the frontend: how many viewers the lab's edge serves, what the origin
is asked for while it does, and the glass-to-glass latency through it; beside the same load on
the origin alone, in the same run.

On a lab of its own with the CDN on (stack "bench-cdn", `up --cdn cloudfront`: the viewers'
domain is the distribution's, realised by the lab's edge; the frontend is its origin,
origin.<domain>), the backend's test pattern stamped with its capture time (probes.timestamp,
through backend_source_filter, as bench_latency does). Two arms, ramped in lockstep, taking
turns (probes.hls.Ramp and ramp_viewers, as bench_viewers ramps its two servers):

  cdn     simulated viewers (probes.hls.run_viewers) on the lab's internet (this host's root
          namespace) at https://<domain>/, through the edge; while they run, headless Chromium
          plays the player page through the edge and samples glass-to-glass latency
          (bench_latency.sample_page_load: the stamped frame on screen against the clock)
  origin  the same viewers straight at the origin, https://origin.<domain>/, with the
          distribution's secret header, from the edge's network namespace (the only source the
          origin's security group lets reach its HTTPS): the same nginx, the same files and
          path as the edge's requests, without the edge's cache

Per run: the viewers sustained (healthy: no late, missed or failed segment, probes.hls's
definition), the requests the viewers sent and the requests the origin received, per fragment
the stream published during the run, for the rendition they watch (the first of the master
playlist, or the stream's only one): the cdn arm's origin requests are the edge's log of its
hop to the origin (one line per request the origin answered it); the origin arm's are the
viewers' own. The edge cannot collapse requests for a playlist it may not cache (1-second
fragments: *.m3u8's MaxTTL is 0), so its origin playlist requests grow with its viewers where
CloudFront's (which collapses simultaneous requests for any object) would not.

Every run is bounded (--step-seconds), the viewers too (--limit), and no run starts that
could end later than --max-seconds after the benchmark began (lab bring-up included).

    .venv/bin/python benchmarks/bench_cdn.py [--start 10] [--limit 640] [--step-seconds 30]
        [--tries 2] [--max-seconds 1500] [--no-browser] [--stack NAME] [--keep] [--reuse]

Prints a table and writes benchmarks/results/cdn.json. Figures, not a test.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from service_lab import RESULTS, ROOT, Service, cdn_lab, host_info, lab_arguments, ramp_arguments, ramp_run
from bench_latency import HEIGHT, RATE, WIDTH, percentile, sample_page_load, settle
from livestream_lab import edge
from livestream_testing.lab import STREAM
from livestream_probes.browser import Browser, BrowserError
from livestream_probes.hls import HlsClient, Ramp, ramp_viewers, run_viewers
from livestream_probes.timestamp import stamp_filter

from ansible_collections.livestream.aws.plugins.module_utils.cdn import ORIGIN_HEADER, origin_name

STACK = "bench-cdn"
OUTPUT = RESULTS / "cdn.json"
# the aims: origin requests per fragment per rendition at most 2 whatever the viewers,
# glass-to-glass latency through the edge under 3.5 s (median)
AIM_ORIGIN_REQUESTS_PER_FRAGMENT = 2
AIM_MEDIAN_MS = 3500
TEARDOWN_SECONDS = 45  # the lab taken down, the report written
# a page load in a run: about this long until the video plays, then sampled every 0.5 s
# until the viewers are about to stop
PLAY_START_S = 5
SAMPLE_INTERVAL_S = 0.5


# --- the viewers: a child process, in the namespace the arm's viewers are in ------------------

def viewers_child(spec: dict) -> None:
    """One run of simulated viewers (probes.hls.run_viewers) as ``spec`` says; its summary as JSON,
    with the fragments the stream published meanwhile (its media playlist's newest, before and after)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one socket per viewer
    headers = {}
    if spec.get("header_file"):
        name, value = Path(spec["header_file"]).read_text().strip().split(": ", 1)
        headers[name] = value
    client = HlsClient(resolve=spec["resolve"], ca_file=spec["ca"], timeout=5, headers=headers)
    first = client.media_playlist(spec["url"]).last_sequence
    load = run_viewers(spec["url"], spec["viewers"], spec["duration_s"], client=client, spread_s=spec["spread_s"])
    last = client.media_playlist(spec["url"]).last_sequence
    print(json.dumps({**load.summary(), "fragments_published": last - first if first is not None and last is not None else None,
                      "first_errors": [error for report in load.reports for error in report.errors][:3]}))


@dataclass
class Arm:
    name: str
    label: str
    url: str  # the stream's playlist, as its viewers ask for it
    resolve: dict[str, str]
    netns: str | None = None  # where its viewers run (None: this host's, the lab's internet)
    header_file: str | None = None
    ramp: Ramp | None = None
    runs: list[dict] = field(default_factory=list)


@dataclass
class Bench:
    service: Service
    args: argparse.Namespace
    rendition: str  # the media playlist the viewers watch, through the edge
    browser: Browser | None

    def start_viewers(self, arm: Arm, count: int) -> subprocess.Popen:
        spec = {"url": arm.url, "viewers": count, "duration_s": self.args.step_seconds, "spread_s": self.args.join_seconds,
                "resolve": arm.resolve, "ca": self.service.summary["ca_cert"], "header_file": arm.header_file}
        command = [sys.executable, str(Path(__file__).resolve()), "--viewers", json.dumps(spec)]
        if arm.netns:
            command = ["ip", "netns", "exec", arm.netns, *command]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with

    def latency(self) -> dict | None:
        """One page load through the edge, sampled until the viewers' run is about to end."""
        if self.browser is None:
            return None
        sample_s = max(2.0, self.args.step_seconds - self.args.join_seconds - PLAY_START_S)
        try:
            return sample_page_load(self.browser, f"{self.service.summary['player_url']}?stream={STREAM}", sample_s,
                                    SAMPLE_INTERVAL_S, start_timeout=30)
        except BrowserError as error:  # a player that does not play under this load: a figure too
            return {"error": str(error)[:300], "latencies": [], "stalls": [], "seconds_to_play": None}


def origin_requests(log: Path, offset: int, end: int, rendition_path: str) -> dict[str, int]:
    """The edge's hop to the origin, between two offsets of its log: the requests for the
    watched rendition's playlist, for other playlists (a master's), for the rendition's fragments
    (nginx-rtmp names them after its playlist: <rendition>-<n>.ts) and for anything else."""
    counts = {"playlist": 0, "other_playlist": 0, "fragment": 0, "other": 0}
    with log.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(max(0, end - offset))
    fragment_prefix = rendition_path.removesuffix(".m3u8") + "-"
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            path = line.split('"')[1].split()[1].split("?")[0]
        except IndexError:
            continue
        if path == rendition_path:
            counts["playlist"] += 1
        elif path.endswith(".m3u8") and path.startswith("/hls/"):
            counts["other_playlist"] += 1
        elif path.endswith(".ts") and path.startswith(fragment_prefix):
            counts["fragment"] += 1
        else:
            counts["other"] += 1
    return counts


def step(bench: Bench, arm: Arm, count: int) -> bool:
    """One run of the arm's ramp: viewers for --step-seconds (Chromium sampling through the edge
    meanwhile, in the cdn arm), measured, recorded and printed; whether it was healthy."""
    log = edge.home(bench.service.lab) / "origin.log"
    offset = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    process = bench.start_viewers(arm, count)
    with concurrent.futures.ThreadPoolExecutor(1) as browser:
        page = browser.submit(bench.latency) if arm.name == "cdn" else None
        try:
            output = process.communicate(timeout=bench.args.step_seconds + 60)[0]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        # the origin's requests while the viewers ran (Chromium's page load may go on a moment)
        end = log.stat().st_size if log.exists() else 0
        seconds = time.monotonic() - started
        page = page.result() if page is not None else None
    if process.returncode != 0 or not output.strip():
        raise RuntimeError(f"{arm.name}: the viewers' process failed ({process.returncode})")
    answer = json.loads(output)
    fragments = answer["fragments_published"] or None
    viewer_requests = answer["playlist_requests"] + answer["segment_requests"]
    run = {
        **ramp_run(count, answer),
        "duration_s": round(seconds, 1),
        "fragments_published": fragments,
        "viewer_requests": {"playlist": answer["playlist_requests"], "fragment": answer["segment_requests"]},
    }
    if arm.name == "cdn":
        counts = origin_requests(log, offset, end, urllib.parse.urlsplit(bench.rendition).path)
        run["origin_requests"] = counts
        origin_playlists, origin_fragments = counts["playlist"], counts["fragment"]
    else:  # nothing between the viewers and the origin: what they asked is what it was asked
        run["origin_requests"] = run["viewer_requests"]
        origin_playlists, origin_fragments = answer["playlist_requests"], answer["segment_requests"]
    if fragments:
        run["per_fragment"] = {
            "viewer_requests": round(viewer_requests / fragments, 2),
            "origin_requests": round((origin_playlists + origin_fragments) / fragments, 2),
            "origin_playlist_requests": round(origin_playlists / fragments, 2),
            "origin_fragment_requests": round(origin_fragments / fragments, 2),
        }
    if page is not None:
        latencies = page["latencies"]
        run["latency_ms"] = None if not latencies else {
            "samples": len(latencies), "median": round(statistics.median(latencies)),
            "p95": round(percentile(latencies, 0.95)), "min": round(min(latencies)), "max": round(max(latencies))}
        run["stalls"] = len(page["stalls"])
        run["seconds_to_play"] = page["seconds_to_play"]
        if page.get("error"):
            run["browser_error"] = page["error"]
    if answer["first_errors"]:
        run["first_errors"] = answer["first_errors"]
    arm.runs.append(run)
    per = run.get("per_fragment", {})
    latency = run.get("latency_ms") or {}
    print(f"  {arm.name:>6} {count:5d} viewers: {'ok  ' if run['healthy'] else 'LATE'}"
          f" late {run['late_segments']}, missed {run['missed_segments']}, errors {run['errors']};"
          f" per fragment: viewers asked {per.get('viewer_requests', '-')}, origin asked {per.get('origin_requests', '-')}"
          f" ({per.get('origin_playlist_requests', '-')} playlists, {per.get('origin_fragment_requests', '-')} fragments)"
          + (f"; latency median {latency['median'] / 1000:.2f} s, p95 {latency['p95'] / 1000:.2f} s,"
             f" stalls {run['stalls']}" if latency else ""), flush=True)
    return run["healthy"]


def arm_figures(arm: Arm) -> dict:
    assert arm.ramp is not None
    return {"label": arm.label, "url": arm.url, "sustained_viewers": arm.ramp.best, "first_late_viewers": arm.ramp.bad,
            "refined": arm.ramp.done, "runs": arm.runs}


def figure(value: float | None, scale: float = 1.0, unit: str = "") -> str:
    return "-" if value is None else f"{value / scale:.2f}{unit}"


def print_table(report: dict) -> None:
    print(f"\nCDN on the lab ({report['host']['cpus']} CPUs, load {report['host']['load_average']['before']} before,"
          f" {report['host']['load_average']['after']} after); rendition {report['settings']['rendition']},"
          f" {report['settings']['fragment_seconds']:g} s fragments")
    print(f"  {'arm':<6} {'viewers':>7} {'ok':>4} {'fragments':>9} {'viewer req/frag':>15} {'origin req/frag':>15}"
          f" {'playlists':>9} {'fragments':>9} {'latency median':>14} {'p95':>7} {'stalls':>6}")
    rows = sorted(((run["viewers"], name, run) for name, arm in report["arms"].items() for run in arm["runs"]),
                  key=lambda row: (row[0], row[1]))
    for viewers, name, run in rows:
        per = run.get("per_fragment") or {}
        latency = run.get("latency_ms") or {}
        print(f"  {name:<6} {viewers:>7} {'yes' if run['healthy'] else 'NO':>4} {str(run['fragments_published']):>9}"
              f" {figure(per.get('viewer_requests')):>15} {figure(per.get('origin_requests')):>15}"
              f" {figure(per.get('origin_playlist_requests')):>9} {figure(per.get('origin_fragment_requests')):>9}"
              f" {figure(latency.get('median'), 1000, ' s'):>14} {figure(latency.get('p95'), 1000, ' s'):>7}"
              f" {str(run.get('stalls', '-')):>6}")
    for name, arm in report["arms"].items():
        print(f"  {name}: {arm['sustained_viewers']} viewers sustained"
              f" (first late: {arm['first_late_viewers'] or '-'}{'' if arm['refined'] else ', ramp not refined'})")
    aim = report["aim"]
    print(f"  aim: origin fragment requests per fragment at most {AIM_ORIGIN_REQUESTS_PER_FRAGMENT} through the edge:"
          f" {aim['origin_fragment_requests_per_fragment_max']} -> {'met' if aim['fragments_met'] else 'NOT met'};"
          f" with playlists: {aim['origin_requests_per_fragment_max']} (the lab's edge does not collapse playlists)")
    print(f"  aim: median latency through the edge under {AIM_MEDIAN_MS / 1000:.1f} s (the worst healthy run's):"
          f" {figure(aim['median_latency_ms'], 1000, ' s')} -> {'met' if aim['latency_met'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    lab_arguments(parser, STACK)
    ramp_arguments(parser, start=10, limit=640, limit_help="most viewers ever run", step_seconds=30, max_seconds=1500)
    parser.add_argument("--no-browser", action="store_true", help="no Chromium, no latency figures")
    parser.add_argument("--viewers", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewers:
        viewers_child(json.loads(args.viewers))
        return

    began = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    with cdn_lab(args.stack, reuse=args.reuse, keep=args.keep) as service, \
            tempfile.TemporaryDirectory(prefix="bench-cdn-") as scratch:
        summary = service.summary
        lab_seconds = time.monotonic() - began
        domain, origin = summary["domain"], origin_name(summary["domain"])
        # the capture-time strip on the backend's test pattern (the CDN stays on: the lab's settings)
        service.configure(backend_source_filter=stamp_filter(WIDTH, HEIGHT, RATE))
        edge_client = HlsClient(resolve={domain: summary["edge_address"]}, ca_file=summary["ca_cert"])
        url = f"https://{domain}/hls/{STREAM}.m3u8"
        settle(edge_client, url, timeout=90)
        playlist = edge_client.playlist(url)
        rendition = playlist.variants[0].uri if playlist.is_master else url
        fragment_seconds = edge_client.media_playlist(rendition).target_duration
        header_file = Path(scratch) / "origin-header"
        header_file.touch(mode=0o600)
        secret = (service.lab.state_dir / "credentials" / "cdn-origin-secret").read_text().split()[0]
        header_file.write_text(f"{ORIGIN_HEADER}: {secret}\n")
        arms = [Arm("cdn", "viewers at the domain, through the lab's edge (CloudFront)", url,
                    {domain: summary["edge_address"]}),
                Arm("origin", "the same viewers at the origin alone, with the CDN's header, from the edge's namespace",
                    f"https://{origin}/hls/{STREAM}.m3u8", {origin: summary["frontend_address"]},
                    netns=service.lab.edge_netns, header_file=str(header_file))]
        deadline = began + args.max_seconds - TEARDOWN_SECONDS
        print(f"CDN on {service.lab.stack}: 2 arms in lockstep, {args.step_seconds:.0f} s runs from {args.start}"
              f" up to {args.limit} viewers, {deadline - time.monotonic():.0f} s left for them;"
              f" the viewers watch {rendition}", flush=True)
        with contextlib.ExitStack() as stack:
            browser = None if args.no_browser else stack.enter_context(
                Browser(ca_file=summary["ca_cert"], resolve={domain: summary["edge_address"]}))
            bench = Bench(service, args, rendition, browser)
            for arm in arms:
                arm.ramp = Ramp(lambda count, arm=arm: step(bench, arm, count), start=args.start,
                                limit=args.limit, tries=args.tries)
            complete = ramp_viewers(*(arm.ramp for arm in arms), deadline=deadline, run_s=args.step_seconds + 20)
    load_after = os.getloadavg()[0]

    through_edge = [run for run in arms[0].runs if run.get("per_fragment")]
    latencies = [run["latency_ms"]["median"] for run in arms[0].runs if run.get("latency_ms") and run["healthy"]]
    report = {
        "date": date,
        "host": host_info(load_before, load_after),
        "settings": {
            "stack": args.stack, "stream": STREAM, "rendition": urllib.parse.urlsplit(rendition).path,
            "fragment_seconds": fragment_seconds, "start_viewers": args.start, "max_viewers": args.limit,
            "step_seconds": args.step_seconds, "join_seconds": args.join_seconds, "tries": args.tries,
            "max_seconds": args.max_seconds, "browser": not args.no_browser, "ramp_complete": complete,
            "viewers": "probes.hls.run_viewers in a child process (cdn: this host's namespace, the lab's internet;"
                       " origin: the edge's namespace, with the CDN's header), HTTPS, HTTP/1.1 keep-alive, TLS verified",
            "origin_requests": "cdn: the edge's log of its hop to the origin (Chromium's requests for the rendition"
                               " included); origin: the viewers' own requests",
        },
        "arms": {arm.name: arm_figures(arm) for arm in arms},
        "aim": {
            "origin_fragment_requests_per_fragment_max": max((run["per_fragment"]["origin_fragment_requests"]
                                                              for run in through_edge), default=None),
            "origin_requests_per_fragment_max": max((run["per_fragment"]["origin_requests"] for run in through_edge),
                                                    default=None),
            # the worst of the healthy runs' medians
            "median_latency_ms": max(latencies, default=None),
        },
        "seconds": {"lab": round(lab_seconds, 1), "total": round(time.monotonic() - began, 1)},
    }
    aim = report["aim"]
    aim["fragments_met"] = aim["origin_fragment_requests_per_fragment_max"] is not None \
        and aim["origin_fragment_requests_per_fragment_max"] <= AIM_ORIGIN_REQUESTS_PER_FRAGMENT
    aim["latency_met"] = aim["median_latency_ms"] is not None and aim["median_latency_ms"] < AIM_MEDIAN_MS
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"{report['seconds']['total']:.0f} s; written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
