"""What the benchmarks share: the service on a lab of its own (latency, viewers, encoding),
up for the benchmark and down at its end, beside any other lab; the options that pick or
keep it; where the figures go, and the host they come from.

    with service_lab("bench-latency") as service:
        service.ssh(service.machines["backend"]["name"], "uptime")
        service.configure(livestream_hls_fragment_seconds=5)   # site settings for one arm

The rest comes from where the tests find it too: the instruments (livestream_probes: HLS
client and viewers, browser, CPU samplers), the lab's machines seen from the host
(livestream_lab.machines: a unit's cgroup and processes, a machine's network namespace)
and the lab as the suites run it (livestream_testing.lab), installed into the checkout's
virtualenv by `make setup`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from livestream_lab import config
from livestream_lab.machines import leader_pid
from livestream_testing import ROOT
from livestream_testing import lab as lab_support

RESULTS = ROOT / "benchmarks" / "results"
# the lab bench_viewers and bench_encoding run on, one after the other with --keep and --reuse
LOAD_STACK = "bench-load"


@dataclass
class Service:
    lab: config.LabConfig
    summary: dict
    machines: dict[str, dict[str, str]]

    def ssh(self, host: str, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return lab_support.ssh(self.lab, host, command, check=check, timeout=timeout)

    def configure(self, **overrides) -> None:
        """Run playbooks/configure.yml on the lab with these variables on top of the lab's
        own (extra vars): how a benchmark switches between the arms it compares."""
        self.playbook("configure.yml", **overrides)

    def playbook(self, name: str, **overrides) -> None:
        """Run playbooks/<name> on the lab as configure() does."""
        env = {**os.environ, **lab_support.aws_environment(self.lab)}
        command = ["ansible-playbook", "-i", self.summary["inventory"], str(ROOT / "playbooks" / name)]
        if overrides:
            command += ["-e", json.dumps(overrides)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # the variables' names only: livestream_streams holds keys
            raise RuntimeError(f"{name} with {sorted(overrides)} failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the benchmarks run the service on a lab, which needs root")


@contextlib.contextmanager
def service_lab(stack: str, keep: bool = False):
    """A lab under `stack` with the service configured by site.yml; taken down at the end
    unless `keep` (then `python -m livestream_lab --stack <stack> down` removes it)."""
    require_root()
    settings = config.load(stack)
    with lab_support.service_lab(stack, keep=keep) as summary:
        yield Service(settings, summary, lab_support.inventory_hosts(settings))


@contextlib.contextmanager
def bench_service(stack: str, *, reuse: bool = False, keep: bool = False):
    """service_lab(stack); with `reuse`, the lab already running under `stack` if there is
    one (then left as it is: several benchmarks can share one lab), else a new one."""
    settings = config.load(stack)
    summary = settings.state_dir / "lab.json"
    service = None
    if reuse and summary.exists():
        try:
            service = Service(settings, json.loads(summary.read_text()), lab_support.inventory_hosts(settings))
            leader_pid(settings, service.machines["frontend"]["name"])  # running, not only described
        except (LookupError, OSError, subprocess.CalledProcessError):
            service = None  # what is left of a lab: service_lab removes it first
    if service is not None:
        yield service
        return
    with service_lab(stack, keep=keep) as service:
        yield service


@contextlib.contextmanager
def cdn_lab(stack: str, *, reuse: bool, keep: bool):
    """The lab under ``stack`` with the CDN on, brought up as a user does it, `python -m
    livestream_lab up --cdn cloudfront`, its output (which names the stream keys, for OBS) kept
    out of the benchmark's. With ``reuse``, the one running with the CDN, if any (left up);
    else a new one, taken down at the end unless ``keep``."""
    require_root()
    command = [sys.executable, "-m", "livestream_lab", "--stack", stack]
    settings = config.load(stack)
    summary = settings.state_dir / "lab.json"  # what `up` wrote
    reused = reuse and summary.exists() and json.loads(summary.read_text()).get("cdn") == "cloudfront"
    if not reused:
        print(f"bringing up the lab {stack} with the CDN on", flush=True)
        for action in (["down"], ["up", "--cdn", "cloudfront"]):
            result = subprocess.run(command + action, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(f"python -m livestream_lab {' '.join(action)} failed:\n{result.stderr[-3000:]}")
    try:
        yield Service(settings, json.loads(summary.read_text()), lab_support.inventory_hosts(settings))
    finally:
        if not (reused or keep):
            subprocess.run(command + ["down"], check=True)


def lab_arguments(parser: argparse.ArgumentParser, stack: str, *, reuse: bool = True, keep: bool = True) -> None:
    """The options of a benchmark that runs on a lab: which, and whether to reuse or keep it."""
    parser.add_argument("--stack", default=stack, help="the lab's stack name (default %(default)s)")
    if reuse:
        parser.add_argument("--reuse", action="store_true",
                            help="use the lab already running under the stack, if any, and leave it up")
    if keep:
        parser.add_argument("--keep", action="store_true",
                            help="leave the lab up at the end (python -m livestream_lab --stack NAME down removes it)")


def ramp_arguments(parser: argparse.ArgumentParser, *, start: int, limit: int, limit_help: str, step_seconds: float,
                   max_seconds: float) -> None:
    """The options of a benchmark that ramps viewers (probes.hls.Ramp, ramp_viewers): where it
    starts, how far it may go, how long each run and the whole benchmark last."""
    parser.add_argument("--start", type=int, default=start, help="viewers of the first run (default %(default)s)")
    parser.add_argument("--limit", type=int, default=limit, help=f"{limit_help} (default %(default)s)")
    parser.add_argument("--step-seconds", type=float, default=step_seconds, help="length of each run (default %(default)s)")
    parser.add_argument("--tries", type=int, default=2,
                        help="runs at one count before it counts as too many (the host is shared: one hiccup is not a limit)")
    parser.add_argument("--join-seconds", type=float, default=3, help="viewers join evenly over this long")
    parser.add_argument("--max-seconds", type=float, default=max_seconds,
                        help="the whole benchmark, lab bring-up included, ends within this (the ramp stops early)")


def ramp_run(count: int, answer: dict) -> dict:
    """What every ramping benchmark reports of a run, from its viewers' LoadReport.summary()."""
    return {"viewers": count, **{key: answer[key] for key in (
        "healthy", "segments", "late_segments", "missed_segments", "errors", "worst_lateness_s")}}


def host_info(load_before: float | None = None, load_after: float | None = None) -> dict:
    """What a figure from this host needs next to it: its CPUs, kernel and memory, and its
    load average (1 minute) before and after the run."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None)
    info = {"cpus": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)}
    if load_before is not None:
        info["load_average"] = {"before": round(load_before, 2),
                                "after": None if load_after is None else round(load_after, 2)}
    return info
