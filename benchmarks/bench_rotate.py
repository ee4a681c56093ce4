"""How long rotating a stream's key takes: livestream.aws.rotate_key (the new key, then the
frontend's and the backend's `keys` entry points alone), side by side with the baseline it
replaced, the new key written into its file and the whole of configure.yml run, on one lab.

The arms alternate (rotate_key, configure.yml, rotate_key, ...), each rotating the test
pattern's key ("test"), so that the machine's drift falls on both. Prints a table and writes
benchmarks/results/rotate.json.

    .venv/bin/python benchmarks/bench_rotate.py [--rounds 3] [--stack NAME] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import string
import time

from livestream_lab import streams as lab_streams
from service_lab import RESULTS, ROOT, bench_service, host_info, lab_arguments

OUTPUT = RESULTS / "rotate.json"
STACK = "bench-rotate"
STREAM = "test"
ALPHABET = string.ascii_letters + string.digits


def rotate_key(service) -> None:
    service.playbook("rotate_key.yml", livestream_rotate_stream=STREAM)


def configure_whole(service) -> None:
    """The baseline: what rotate_key did before it put the keys alone in place."""
    key_file = lab_streams.key_file(service.lab, STREAM)
    key_file.write_text("".join(map(secrets.choice, [ALPHABET] * 32)) + "\n")
    service.playbook("configure.yml")


ARMS = {"rotate_key": rotate_key, "configure.yml": configure_whole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each arm (default %(default)s)")
    lab_arguments(parser, STACK)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {name: [] for name in ARMS}
    load_before = os.getloadavg()[0]
    with bench_service(args.stack, reuse=args.reuse, keep=args.keep) as service:
        for round_number in range(args.rounds):
            for name, run in ARMS.items():
                started = time.monotonic()
                run(service)
                seconds[name].append(round(time.monotonic() - started, 1))
                print(f"round {round_number + 1}: {name} {seconds[name][-1]:.1f} s", flush=True)
    report = {
        "host": host_info(load_before, os.getloadavg()[0]),
        "stream": STREAM,
        "seconds": seconds,
        "median_seconds": {name: statistics.median(values) for name, values in seconds.items()},
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    ours, baseline = report["median_seconds"]["rotate_key"], report["median_seconds"]["configure.yml"]
    print(f"rotating a key ({args.rounds} rounds, {report['host']['cpus']} CPUs), median seconds")
    print(f"  {'rotate_key (the keys alone)':<44} {ours:7.1f}")
    print(f"  {'baseline: new key file + configure.yml':<44} {baseline:7.1f}")
    print(f"  rotate_key takes {ours / baseline:.0%} of the baseline's time")
    print(f"written to {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
