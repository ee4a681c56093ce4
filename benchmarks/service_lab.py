"""The service on a lab of its own, for the benchmarks that measure it (latency, viewers,
encoding): up for the benchmark, down at its end, beside any other lab.

    with service_lab("bench-latency") as service:
        service.ssh(service.machines["backend"]["name"], "uptime")
        service.configure(livestream_hls_fragment_seconds=5)   # site settings for one arm

The benchmarks use the probes (livestream_probes) and the lab helpers the test suites use
(livestream_testing.lab), installed into the checkout's virtualenv by `make setup`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

from livestream_lab import config
from livestream_testing import lab as lab_support
from livestream_testing.lab import inventory_hosts, ssh as lab_ssh


@dataclass
class Service:
    lab: config.LabConfig
    summary: dict
    machines: dict[str, dict[str, str]]

    def ssh(self, host: str, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return lab_ssh(self.lab, host, command, check=check, timeout=timeout)

    def configure(self, **overrides) -> None:
        """Run playbooks/configure.yml on the lab with these variables on top of the lab's
        own (extra vars): how a benchmark switches between the arms it compares."""
        env = {**os.environ, **lab_support.aws_environment(self.lab)}
        command = ["ansible-playbook", "-i", self.summary["inventory"], str(ROOT / "playbooks" / "configure.yml")]
        if overrides:
            command += ["-e", json.dumps(overrides)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"configure.yml with {overrides} failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("the benchmarks run the service on a lab, which needs root")


@contextlib.contextmanager
def service_lab(stack: str, keep: bool = False):
    """A lab under `stack` with the service configured by site.yml; taken down at the end
    unless `keep` (then `LIVESTREAM_STACK=<stack> make lab-down` removes it)."""
    require_root()
    settings = config.load(stack)
    with lab_support.service_lab(stack, keep=keep) as summary:
        yield Service(settings, summary, inventory_hosts(settings))
