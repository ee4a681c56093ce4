"""What a shorter keyframe interval costs the backend's encoding: the bit rate at equal
quality, the quality at the bit rate the backend sends, and the encoder's CPU, with a
keyframe every fragment of 1 s (the baseline, GOP 30 at 30 fps) and of 0.5 s (GOP 15),
side by side in one run, on the same sources.

The encoder is the backend's: this host's ffmpeg (Debian's, the same package the backend
installs) with the backend role's x264 settings (backend_x264_preset, -tune zerolatency,
yuv420p, a keyframe every fragment: -g = -keyint_min = fps x fragment, -sc_threshold 0).
Only the keyframe interval differs between the arms. Each source is 1280x720 at 30 fps,
rendered once to a lossless file so that every arm encodes the same frames:

  pattern     the lab's test pattern (testsrc2, what the backend streams by default)
  grainy      the same with a camera's sensor noise (new in every frame)
  pan         a camera panning slowly over a detailed still (a fractal twice the frame's size)
  zoom        a Mandelbrot zoom: detail everywhere, changing every frame (hard)
  still       SMPTE bars: nothing moves (where keyframes cost the most, relatively)

Two rate controls per arm:
  crf         x264 CRF 23 (constant quality): the bit rate at equal quality; SSIM against
              the source shows the quality is in fact equal
  cbr         the backend's own: -b:v = -maxrate = the ladder's 720p rung, 2800 kbit/s, -bufsize 2x:
              the same bit rate, so the cost shows as quality (SSIM, PSNR) instead

CPU: user + system seconds of the encoding ffmpeg per second of video (this host's cores,
one encode at a time).

    .venv/bin/python benchmarks/bench_keyframes.py [--seconds 20] [--sources pattern,grainy,pan,zoom,still]

Prints a table and writes benchmarks/results/keyframes.json. Figures, not a test. Needs
no lab: it runs ffmpeg on this host only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from service_lab import RESULTS, ROOT, host_info

OUTPUT = RESULTS / "keyframes.json"
WIDTH, HEIGHT, FPS = 1280, 720, 30
SOURCES = {
    "pattern": f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
    "grainy": f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=6:allf=t",
    "pan": f"mandelbrot=size={2 * WIDTH}x{2 * HEIGHT}:rate={FPS},trim=end_frame=1,loop=loop=-1:size=1,"
           f"setpts=N/{FPS}/TB,crop={WIDTH}:{HEIGHT}:x='t*60':y='t*30'",
    "zoom": f"mandelbrot=size={WIDTH}x{HEIGHT}:rate={FPS}",
    "still": f"smptehdbars=size={WIDTH}x{HEIGHT}:rate={FPS}",
}
# fragment length (s) -> arm; the first is the baseline
ARMS = {1.0: "1 s", 0.5: "0.5 s"}
CRF = 23
CBR_KBPS = 2800  # the ladder's 720p rung (roles/streams/vars/main.yml)


def role_default(name: str) -> str:
    """A default of the backend role, read from its defaults (one place for it)."""
    return str(yaml.safe_load((ROOT / "roles" / "backend" / "defaults" / "main.yml").read_text())[name])


def ffmpeg(*arguments: str) -> tuple[str, float]:
    """Run ffmpeg; its stderr and its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *arguments],
                          capture_output=True, text=True, timeout=600, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"ffmpeg {' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return done.stderr, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def quality(reference: Path, encoded: Path) -> dict:
    """SSIM (all planes) and PSNR (average) of an encoding against its source."""
    log = ffmpeg("-i", str(encoded), "-i", str(reference), "-lavfi", "[0:v][1:v]ssim;[0:v][1:v]psnr",
                 "-f", "null", "-")[0]
    ssim = re.search(r"SSIM .* All:([0-9.]+)", log)
    psnr = re.search(r"PSNR .* average:([0-9.]+|inf)", log)
    return {"ssim": float(ssim.group(1)) if ssim else None,
            "psnr_db": float(psnr.group(1)) if psnr and psnr.group(1) != "inf" else None}


def encode(source: Path, output: Path, fragment_s: float, rate: str, preset: str, seconds: float) -> dict:
    gop = str(round(FPS * fragment_s))
    control = (["-crf", str(CRF)] if rate == "crf" else
               ["-b:v", f"{CBR_KBPS}k", "-maxrate", f"{CBR_KBPS}k", "-bufsize", f"{CBR_KBPS * 2}k"])
    cpu = ffmpeg("-i", str(source), "-an", "-c:v", "libx264", "-preset", preset, "-tune", "zerolatency",
                 "-pix_fmt", "yuv420p", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", *control,
                 "-f", "mp4", str(output))[1]
    kbps = output.stat().st_size * 8 / seconds / 1000
    return {"gop": int(gop), "kbps": round(kbps, 1), "cpu_s_per_s": round(cpu / seconds, 3),
            **quality(source, output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20, help="length of each source (default %(default)s)")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of: {', '.join(SOURCES)}")
    args = parser.parse_args()
    sources = args.sources.split(",")
    unknown = [name for name in sources if name not in SOURCES]
    if unknown:
        parser.error(f"--sources: unknown {', '.join(unknown)} (known: {', '.join(SOURCES)})")
    preset = role_default("backend_x264_preset")
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()[0]
    began = time.monotonic()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-keyframes-") as work:
        for name in sources:
            source = Path(work) / f"{name}.mkv"
            ffmpeg("-f", "lavfi", "-i", SOURCES[name], "-t", str(args.seconds), "-pix_fmt", "yuv420p",
                   "-c:v", "ffv1", str(source))
            results[name] = {}
            for rate in ("crf", "cbr"):
                for fragment_s, arm in ARMS.items():
                    figures = encode(source, Path(work) / f"{name}-{rate}-{fragment_s}.mp4", fragment_s, rate,
                                     preset, args.seconds)
                    results[name].setdefault(rate, {})[arm] = figures
                    print(f"{name:8} {rate:4} keyframe every {arm:6} (GOP {figures['gop']:2}): "
                          f"{figures['kbps']:8.1f} kbit/s  SSIM {figures['ssim']:.4f}  "
                          f"PSNR {figures['psnr_db'] or float('inf'):.2f} dB  CPU {figures['cpu_s_per_s']:.3f} s/s",
                          flush=True)
            source.unlink()
    baseline, short = ARMS.values()

    def ratio(rate: str, key: str) -> dict:
        return {name: round(results[name][rate][short][key] / results[name][rate][baseline][key], 3)
                for name in sources if results[name][rate][baseline][key]}

    summary = {
        "crf_bitrate_short_over_baseline": ratio("crf", "kbps"),
        "crf_ssim_difference": {name: round(results[name]["crf"][short]["ssim"] - results[name]["crf"][baseline]["ssim"], 4)
                                for name in sources},
        "cbr_psnr_difference_db": {name: round((results[name]["cbr"][short]["psnr_db"] or 0)
                                               - (results[name]["cbr"][baseline]["psnr_db"] or 0), 2)
                                   for name in sources},
        "cbr_ssim_difference": {name: round(results[name]["cbr"][short]["ssim"] - results[name]["cbr"][baseline]["ssim"], 4)
                                for name in sources},
        "cpu_short_over_baseline": ratio("cbr", "cpu_s_per_s"),
    }
    print("\nkeyframe every 0.5 s against every 1 s:")
    for name in sources:
        print(f"  {name:8} CRF {CRF}: bit rate x{summary['crf_bitrate_short_over_baseline'][name]} "
              f"(SSIM {summary['crf_ssim_difference'][name]:+.4f});  at {CBR_KBPS} kbit/s: "
              f"PSNR {summary['cbr_psnr_difference_db'][name]:+.2f} dB, SSIM {summary['cbr_ssim_difference'][name]:+.4f};  "
              f"CPU x{summary['cpu_short_over_baseline'].get(name)}")
    report = {
        "date": date,
        "host": host_info(load_before, os.getloadavg()[0]),
        "settings": {"size": f"{WIDTH}x{HEIGHT}", "fps": FPS, "seconds": args.seconds, "encoder": "libx264",
                     "preset": preset, "tune": "zerolatency", "crf": CRF, "cbr_kbps": CBR_KBPS,
                     "arms": {arm: {"fragment_seconds": fragment_s, "gop": round(FPS * fragment_s)}
                              for fragment_s, arm in ARMS.items()},
                     "sources": {name: SOURCES[name] for name in sources}},
        "results": results,
        "summary": summary,
        "seconds": round(time.monotonic() - began, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
