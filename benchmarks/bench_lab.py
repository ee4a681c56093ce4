"""How long the lab takes: `make lab` from nothing (image build included), `make lab` with
the image cached, a second `make lab` on a running lab, and `make lab-down`.

"From nothing" builds the image into a scratch cache directory (LIVESTREAM_LAB_CACHE), so
the real cache survives the measurement. Runs under its own stack name, beside any other
lab. Prints a table and writes benchmarks/results/lab.json.

    .venv/bin/python benchmarks/bench_lab.py [--skip-image-build] [--stack NAME]
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

from service_lab import RESULTS, ROOT, host_info, lab_arguments

OUTPUT = RESULTS / "lab.json"
STACK = "bench"
AIM_CACHED_SECONDS = 180


def timed(target: str, env: dict) -> float:
    started = time.monotonic()
    result = subprocess.run(["make", "-s", "--no-print-directory", target], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        subprocess.run(["make", "-s", "lab-down"], cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL)
        sys.exit(f"make {target} failed after {elapsed:.0f}s:\n{result.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-image-build", action="store_true",
                        help="leave out `make lab` from nothing (about a minute of debootstrap)")
    lab_arguments(parser, STACK, reuse=False, keep=False)
    args = parser.parse_args()
    env = {**os.environ, "LIVESTREAM_STACK": args.stack}
    figures: dict[str, float | None] = {"from_nothing": None}

    subprocess.run(["make", "-s", "lab-down"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    if not args.skip_image_build:
        scratch = Path(tempfile.mkdtemp(prefix="livestream-lab-bench-"))
        try:
            figures["from_nothing"] = timed("lab", {**env, "LIVESTREAM_LAB_CACHE": str(scratch)})
            timed("lab-down", env)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    figures["cached"] = timed("lab", env)
    figures["again"] = timed("lab", env)
    figures["down"] = timed("lab-down", env)

    report = {
        "host": host_info(),
        "scope": "full service (site.yml)",
        "seconds": {name: None if value is None else round(value, 1) for name, value in figures.items()},
        "aim": {"cached_seconds": AIM_CACHED_SECONDS,
                "met": figures["cached"] < AIM_CACHED_SECONDS},
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"lab benchmark ({report['scope']}, {report['host']['cpus']} CPUs)")
    for name, label in (("from_nothing", "make lab from nothing (image build included)"),
                        ("cached", "make lab, image cached"), ("again", "make lab on a running lab"),
                        ("down", "make lab-down")):
        value = report["seconds"][name]
        print(f"  {label:<46} {'skipped' if value is None else f'{value:7.1f} s'}")
    print(f"  aim: cached bring-up under {AIM_CACHED_SECONDS} s: {'met' if report['aim']['met'] else 'NOT met'}")
    print(f"written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
