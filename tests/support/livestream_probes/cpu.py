"""CPU samplers: a server's cumulative CPU seconds, read from outside it, for
run_viewers' ``cpu`` and the benchmarks' windows (take the difference of two samples).

- a cgroup's (``cpu.stat`` ``usage_usec``): every process that ran in it, those that
  exited included; a lab machine's systemd unit is a cgroup the host reads
  (livestream_lab.machines.unit_cgroup), so nothing of the measurement runs in the machine;
- processes by name or by process tree, from ``/proc/<pid>/stat`` lines (this machine's, or
  any reader's, such as ``cat /proc/[0-9]*/stat`` over ssh): a process that exits between
  two samples takes its share with it;
- the whole host's busy and total time (``/proc/stat``), for the share of it a window used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

CpuSampler = Callable[[], float]
"""Returns the server's cumulative CPU seconds so far; the load run takes the difference."""


def cgroup_cpu_seconds(cgroup: Path) -> float:
    """CPU seconds used so far by every process that ran in the cgroup (cpu.stat usage_usec,
    the unified hierarchy): processes that exited are still counted, unlike /proc/<pid>/stat."""
    for line in (Path(cgroup) / "cpu.stat").read_text().splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    raise LookupError(f"{cgroup}/cpu.stat has no usage_usec")


def cgroup_sampler(cgroup: Path) -> CpuSampler:
    """A sampler of the cgroup's cumulative CPU seconds. A systemd unit restarted in
    between gets a new cgroup: sample around a window in which it is not restarted."""
    return lambda: cgroup_cpu_seconds(cgroup)


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole host so far, from /proc/stat: the share of the
    host a window used is the difference of busy over the difference of total."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / ticks, total / ticks


def local_proc_stat(proc: str = "/proc") -> str:
    """Every process's /proc/<pid>/stat line on this machine, like ``cat /proc/[0-9]*/stat``."""
    lines = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                with open(os.path.join(proc, entry, "stat"), encoding="ascii", errors="replace") as stat:
                    lines.append(stat.read().strip())
            except OSError:
                continue  # gone since the listing
    return "\n".join(lines)


def process_cpu_seconds(name: str | None = None, *, root_pid: int | None = None,
                        read: Callable[[], str] = local_proc_stat) -> CpuSampler:
    """A CPU sampler for the processes named ``name``, or for ``root_pid`` and all its
    descendants (nginx's master and its workers), or both conditions at once.

    ``read`` returns the /proc/<pid>/stat lines to look at: this machine's by default; for
    a lab machine, a callable that runs ``cat /proc/[0-9]*/stat 2>/dev/null`` over ssh.
    A process that exits between two samples takes its share with it: sample around a
    run in which the server is not restarted.
    """

    def sample() -> float:
        return stat_cpu_ticks(read(), name, root_pid=root_pid) / os.sysconf("SC_CLK_TCK")

    return sample


def stat_cpu_ticks(stat: str, name: str | None = None, *, root_pid: int | None = None) -> int:
    """utime + stime (clock ticks) of the processes in ``stat`` (/proc/<pid>/stat lines),
    counting only those whose command name is ``name`` and, with ``root_pid``, only that
    process and its descendants."""
    processes: dict[int, tuple[str, int, int]] = {}  # pid: (command, parent, ticks)
    for line in stat.splitlines():
        if ")" not in line:
            continue
        command = line[line.index("(") + 1:line.rindex(")")]
        fields = line[line.rindex(")") + 2:].split()
        # after the command: state, ppid, ... utime and stime are the 12th and 13th
        processes[int(line.split(" ", 1)[0])] = (command, int(fields[1]), int(fields[11]) + int(fields[12]))
    chosen = set(processes)
    if root_pid is not None:
        chosen = {root_pid} & chosen
        grew = True
        while grew:
            children = {pid for pid, process in processes.items() if process[1] in chosen}
            grew = not children <= chosen
            chosen |= children
    return sum(processes[pid][2] for pid in chosen if name is None or processes[pid][0] == name)
