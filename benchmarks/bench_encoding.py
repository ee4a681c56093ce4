"""Backend encoding cost: CPU seconds per second of video of one stream, sent as it is
(`copy`) and encoded into the ABR ladder (`transcode`), from the test pattern, from a
media file, and from an encoder publishing to the frontend over RTMPS (source `ingest`:
ffmpeg on the lab's internet, this host, sending 1080p30 H.264/AAC with a keyframe a second).

Each arm reconfigures the lab's service (playbooks/configure.yml with livestream_streams
overridden, Service.configure), waits until the stream's playlist advances over HTTPS
(every rendition of the ladder: the closing check of configure.yml, through the probes),
lets the encoder warm up, then reads the CPU time of the stream's unit
(livestream-stream@test.service: cpu.stat usage_usec of its cgroup, read by the host, so
nothing of the measurement runs on the backend) over a fixed window. The video produced in
that window is what the frontend lists: the durations of the segments that appeared in the
stream's (top rendition's) playlist, polled over HTTPS from the host. CPU seconds per
second of video = CPU / video; the real-time factor = video / wall time (below 1: the
encoder cannot keep up on this host). The frontend's nginx CPU (ingest and packaging) in
the same window is reported too. The last arm is the lab's default stream, so a lab that
is reused is left as site.yml configured it.

    .venv/bin/python benchmarks/bench_encoding.py [--reuse] [--keep] [--stack NAME] [--window-seconds 30]

Prints a table and writes benchmarks/results/encoding.json. Figures, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service_lab import LOAD_STACK, RESULTS, ROOT, Service, bench_service, host_info, lab_arguments
from livestream_lab import streams as lab_streams
from livestream_lab.machines import unit_cgroup, unit_pids
from livestream_testing.lab import STREAM, stream_key
from livestream_probes.cpu import cgroup_cpu_seconds, cgroup_sampler, host_cpu
from livestream_probes.encoder import Encoder, Encoding
from livestream_probes.hls import HlsClient

OUTPUT = RESULTS / "encoding.json"
UNIT = f"livestream-stream@{STREAM}.service"
WARMUP_SECONDS = 10
POLL_SECONDS = 0.5

# The media file of the file arms: what a camera or an encoder upstream would send, H.264
# and AAC with a keyframe every second (the fragment length), at the ladder's top height.
MEDIA = {"seconds": 20, "width": 1920, "height": 1080, "fps": 30, "video_kbps": 5000, "audio_kbps": 128}

# The roles' default ladder, given explicitly so that the figures say what they measured.
LADDER = [{"height": 1080, "video_kbps": 5000, "audio_kbps": 128},
          {"height": 720, "video_kbps": 2800, "audio_kbps": 128},
          {"height": 480, "video_kbps": 1400, "audio_kbps": 96}]

# name: (what it is, source, mode); the default stream last
ARMS = {
    "copy-file": ("copy: the 1080p H.264/AAC file sent as it is", "file", "copy"),
    "ladder-file": ("ABR ladder (3 renditions) from the 1080p file", "file", "transcode"),
    "ladder-pattern": ("ABR ladder (3 renditions) from the test pattern", "testsrc", "transcode"),
    # an encoder on the lab's internet (this host) publishing what MEDIA describes over RTMPS
    # to the frontend's ingest, which the backend pulls over the VPC
    "copy-ingest": ("copy: an encoder's 1080p H.264/AAC over RTMPS, pulled from the frontend", "ingest", "copy"),
    "ladder-ingest": ("ABR ladder (3 renditions) from an encoder's 1080p over RTMPS", "ingest", "transcode"),
    "copy-pattern": ("copy: the test pattern, encoded once at 720p (the lab's default stream)", "testsrc", "copy"),
}


def make_media(directory: Path) -> Path:
    path = directory / "source.mp4"
    gop = str(MEDIA["fps"])
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={MEDIA['width']}x{MEDIA['height']}:rate={MEDIA['fps']}",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(MEDIA["seconds"]),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop,
         "-sc_threshold", "0", "-b:v", f"{MEDIA['video_kbps']}k", "-maxrate", f"{MEDIA['video_kbps']}k",
         "-bufsize", f"{MEDIA['video_kbps'] * 2}k", "-c:a", "aac", "-b:a", f"{MEDIA['audio_kbps']}k",
         "-movflags", "+faststart", str(path)], check=True)
    return path


def video_window(client: HlsClient, url: str, seconds: float) -> tuple[float, int]:
    """Seconds of video the stream's playlist gained in the next `seconds` (the segments
    listed after the first poll, up to the last poll), and how many segments that was."""
    watched = client.watch(url, seconds, until=lambda _before, _current: False, poll_s=POLL_SECONDS)
    return sum(segment.duration for segment in watched.new), len(watched.new)


def measure(service: Service, client: HlsClient, url: str, window: float, *, ladder: bool) -> dict:
    backend = service.machines["backend"]["name"]
    frontend = service.machines["frontend"]["name"]
    # the closing check's own: the playlist of the arm's kind (a master playlist for the
    # ladder), then every rendition advancing
    [check] = client.streams_advance({url: ladder}, within_s=90)
    if not check:
        raise RuntimeError(f"the stream does not move at {url}: {check.explain()}")
    time.sleep(WARMUP_SECONDS)  # x264's and the muxers' start-up, out of the window
    stream = unit_cgroup(service.lab, backend, UNIT)
    nginx = cgroup_sampler(unit_cgroup(service.lab, frontend, "nginx.service"))
    pids = unit_pids(service.lab, backend, UNIT)
    cpu_before, nginx_before, (busy_before, total_before) = cgroup_cpu_seconds(stream), nginx(), host_cpu()
    started = time.monotonic()
    video_s, segments = video_window(client, url, window)
    wall = time.monotonic() - started
    cpu = cgroup_cpu_seconds(stream) - cpu_before
    nginx_cpu = nginx() - nginx_before
    busy_after, total_after = host_cpu()
    if unit_pids(service.lab, backend, UNIT) != pids:
        raise RuntimeError(f"{UNIT} restarted during the window")
    return {
        "window_s": round(wall, 2),
        "video_s": round(video_s, 3),
        "segments": segments,
        "stream_cpu_s": round(cpu, 3),
        "cpu_s_per_video_s": round(cpu / video_s, 3) if video_s else None,
        "cpu_s_per_s": round(cpu / wall, 3),
        "realtime_factor": round(video_s / wall, 3),
        "frontend_nginx_cpu_s_per_s": round(nginx_cpu / wall, 4),
        "host_busy": round((busy_after - busy_before) / (total_after - total_before), 3),
    }


@contextlib.contextmanager
def encoder_for(service: Service, key: str, source: str, window: float):
    """For an ingest arm, the encoder publishing STREAM over RTMPS meanwhile (a keyframe a
    second, as MEDIA has it, for copy); nothing for the others."""
    if source != "ingest":
        yield None
        return
    server = lab_streams.encoder_streams(service.lab)[0]["server"]
    encoding = Encoding(height=MEDIA["height"], fps=MEDIA["fps"], keyframe_s=1, video_kbps=MEDIA["video_kbps"])
    with Encoder(f"{server}/{STREAM}?key={key}", seconds=window + 180, ca_file=str(service.lab.ca_cert),
                 encoding=encoding) as encoder:
        yield encoder


def ffmpeg_command(service: Service) -> str:
    """The stream's ffmpeg command as the backend role wrote it (the key is not in it: the
    unit reads it from a root-only environment file)."""
    script = service.ssh(service.machines["backend"]["name"], f"cat /etc/livestream/streams/{STREAM}.sh").stdout
    command = script[script.index("exec "):] if "exec " in script else script
    return " ".join(line.strip().rstrip("\\").strip() for line in command.splitlines() if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    lab_arguments(parser, LOAD_STACK)
    parser.add_argument("--window-seconds", type=float, default=30, help="measurement window of each arm")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    args = parser.parse_args()
    chosen = [name for name in ARMS if name in args.arms.split(",")]

    began = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-encoding-") as scratch, \
            bench_service(args.stack, reuse=args.reuse, keep=args.keep) as service:
        media = make_media(Path(scratch)) if any(ARMS[name][1] == "file" for name in chosen) else None
        domain = service.summary["domain"]
        client = HlsClient(resolve={domain: service.summary["frontend_address"]}, ca_file=str(service.lab.ca_cert))
        url = f"https://{domain}/hls/{STREAM}.m3u8"
        key = stream_key(service.lab)  # STREAM's, the default stream's
        load_before = os.getloadavg()
        default_left = True
        try:
            for name in chosen:
                label, source, mode = ARMS[name]
                configure_started = time.monotonic()
                if name == "copy-pattern":
                    service.configure()  # the lab's own settings
                else:
                    service.configure(livestream_abr_ladder=LADDER,
                                      livestream_streams=[{"name": STREAM, "key": key, "mode": mode,
                                                           "source": str(media) if source == "file" else source}])
                default_left = name == "copy-pattern"
                configured_s = round(time.monotonic() - configure_started, 1)
                with encoder_for(service, key, source, args.window_seconds):
                    figures = measure(service, client, url, args.window_seconds, ladder=mode == "transcode")
                results[name] = {"label": label, "source": source, "mode": mode, "configure_s": configured_s,
                                 **figures, "ffmpeg": ffmpeg_command(service)}
                figures = results[name]
                print(f"  {name:<15} {figures['cpu_s_per_video_s']} CPU s per s of video,"
                      f" real-time factor {figures['realtime_factor']}, host {figures['host_busy']:.0%} busy", flush=True)
        finally:
            if not default_left:
                service.configure()  # back to what site.yml left
        load_after = os.getloadavg()

    report = {
        "date": date,
        "host": host_info(load_before[0], load_after[0]),
        "settings": {
            "stack": args.stack, "stream": STREAM, "window_seconds": args.window_seconds, "warmup_seconds": WARMUP_SECONDS,
            "abr_ladder": LADDER, "media_file": MEDIA, "role_settings": "the backend role's defaults otherwise"
            " (each arm's ffmpeg command is recorded with it)",
            "cpu": f"cgroup cpu.stat usage_usec of {UNIT} on the backend, read by the host",
            "video": "durations of the segments the stream's (top rendition's) playlist gained, polled over HTTPS",
        },
        "arms": results,
        "seconds": round(time.monotonic() - began, 1),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{'arm':<15} {'CPU s / s of video':>18} {'real-time':>9} {'CPU s/s':>8} {'nginx s/s':>9} {'host busy':>9}")
    for name, figures in results.items():
        print(f"{name:<15} {figures['cpu_s_per_video_s'] or float('nan'):>18.3f} {figures['realtime_factor']:>9.2f}"
              f" {figures['cpu_s_per_s']:>8.3f} {figures['frontend_nginx_cpu_s_per_s']:>9.3f} {figures['host_busy']:>9.0%}")
    print(f"{report['seconds']:.0f} s; written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
