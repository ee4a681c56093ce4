"""A lab's machines seen from the host, for the benchmarks that measure the service's CPU.

The machines are systemd-nspawn containers: their processes are the host's processes, and
the cgroups their systemd makes for each unit sit under the lab's cgroup of the machine.
So the host reads a unit's CPU time without going through the machine (no ssh in the
measurement, nothing of the measurement counted in it), and runs a program inside a
machine's network namespace while the program's CPU stays outside the machine's units.

    leader = leader_pid(lab, "bench-load-frontend")       # the machine's init, as the host sees it
    cpu = unit_cpu_seconds(lab, "bench-load-frontend", "nginx.service")
    before = cpu(); ...; used = cpu() - before              # CPU seconds of nginx's master and workers
    subprocess.run(in_network_of(lab, "bench-load-frontend", ["curl", ...]))
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Callable

from service_lab import Service, inventory_hosts, service_lab
from livestream_lab import config
from livestream_lab.machines import in_network_of, leader_pid, named_dir  # noqa: F401  pylint: disable=unused-import

CpuSampler = Callable[[], float]


@contextlib.contextmanager
def bench_service(stack: str, *, reuse: bool = False, keep: bool = False):
    """service_lab(stack); with `reuse`, the lab already running under `stack` if there is
    one (then left as it is: several benchmarks can share one lab), else a new one."""
    settings = config.load(stack)
    summary = settings.state_dir / "lab.json"
    service = None
    if reuse and summary.exists():
        try:
            service = Service(settings, json.loads(summary.read_text()), inventory_hosts(settings))
            leader_pid(settings, service.machines["frontend"]["name"])  # running, not only described
        except (LookupError, OSError, subprocess.CalledProcessError):
            service = None  # what is left of a lab: service_lab removes it first
    if service is not None:
        yield service
        return
    with service_lab(stack, keep=keep) as service:
        yield service


def lab_arguments(parser, stack: str) -> None:
    """The options of a benchmark that runs on a lab: which, and whether to reuse or keep it."""
    parser.add_argument("--stack", default=stack, help="the lab's stack name (default %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="use the lab already running under the stack, if any, and leave it up")
    parser.add_argument("--keep", action="store_true", help="leave the lab up at the end (for --reuse)")


def unit_cgroup(lab: config.LabConfig, name: str, unit: str) -> Path:
    """The cgroup (unified hierarchy) of the machine's systemd unit `unit`, e.g.
    ``nginx.service`` or ``livestream-stream@test.service`` (under its template's slice)."""
    top = config.CGROUP_ROOT / "unified" / lab.cgroup_name / named_dir(lab, name).name
    found = sorted(top.rglob(unit), key=lambda path: len(path.parts))
    if not found:
        raise LookupError(f"{lab.stack}: no unit {unit} running on {name}")
    return found[0]


def cgroup_cpu_seconds(cgroup: Path) -> float:
    """CPU seconds used so far by every process that ran in the cgroup (cpu.stat usage_usec):
    processes that exited are still counted, unlike /proc/<pid>/stat."""
    for line in (cgroup / "cpu.stat").read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise LookupError(f"{cgroup}/cpu.stat has no usage_usec")


def unit_cpu_seconds(lab: config.LabConfig, name: str, unit: str) -> CpuSampler:
    """A sampler of the unit's cumulative CPU seconds (probes.hls.run_viewers' `cpu`). The
    cgroup is found once: a unit restarted in between gets a new one, so sample around a
    window in which it is not restarted (unit_pids before and after tells)."""
    cgroup = unit_cgroup(lab, name, unit)
    return lambda: cgroup_cpu_seconds(cgroup)


def unit_pids(lab: config.LabConfig, name: str, unit: str) -> list[int]:
    """The host's PIDs of the unit's processes now."""
    return [int(pid) for pid in (unit_cgroup(lab, name, unit) / "cgroup.procs").read_text().split()]


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host so far, from /proc/stat: the share of the
    host a window used is the difference of busy over the difference of total."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / ticks, total / ticks


def host_info() -> dict:
    """What a figure from this host needs next to it."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None)
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)}
