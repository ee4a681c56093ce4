"""The CPU samplers: a cgroup's usage, processes from /proc/<pid>/stat, the host's share."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from livestream_probes.cpu import cgroup_cpu_seconds, cgroup_sampler, host_cpu, process_cpu_seconds, stat_cpu_ticks


BUSY_THEN_IDLE = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
until = time.process_time() + 0.3
while time.process_time() < until:
    pass
print("idle", flush=True)
time.sleep(30)
"""


def busy(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def stat_line(pid: int, command: str, parent: int, utime: int, stime: int) -> str:
    """A /proc/<pid>/stat line: after the command, state, parent, ... utime and stime 12th and 13th."""
    return f"{pid} ({command}) S {parent} {pid} {pid} 0 -1 4194560 0 0 0 0 {utime} {stime} 0 0 20 0 1 0"


# nginx's master (100), its worker (101) and what the worker ran (102); another nginx (200)
# outside that tree; a command whose name holds a parenthesis
STAT = "\n".join([stat_line(100, "nginx", 1, 7, 3), stat_line(101, "nginx", 100, 20, 5), stat_line(102, "sh", 101, 1, 1),
                  stat_line(200, "nginx", 1, 100, 0), stat_line(300, "a) b", 1, 4, 0)])


def test_cpu_ticks_count_a_process_tree_a_name_or_both():
    assert stat_cpu_ticks(STAT, "nginx") == 10 + 25 + 100
    assert stat_cpu_ticks(STAT, root_pid=100) == 10 + 25 + 2, "the master and all its descendants"
    assert stat_cpu_ticks(STAT, "nginx", root_pid=100) == 10 + 25
    assert stat_cpu_ticks(STAT, "a) b") == 4
    assert stat_cpu_ticks(STAT, root_pid=2 ** 22 + 1) == 0, "no such process, nothing counted"
    ticks = os.sysconf("SC_CLK_TCK")
    assert process_cpu_seconds("nginx", read=lambda: STAT)() == 135 / ticks, "any reader of stat lines (ssh)"


def test_cpu_sampler_reads_this_machines_processes():
    # a child of its own, busy for 0.3 s of CPU when told and then idle: on a shared host other
    # processes (of the same name, or in this one's tree, such as a browser shutting down)
    # come and go, and take their CPU time with them
    child = subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE],  # pylint: disable=consider-using-with
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdin and child.stdout and child.stdout.readline() == b"ready\n"
        with open(f"/proc/{child.pid}/stat", encoding="ascii") as stat:
            own = stat.read()
        name = own[own.index("(") + 1:own.rindex(")")]
        by_tree, by_both = process_cpu_seconds(root_pid=child.pid), process_cpu_seconds(name, root_pid=child.pid)
        before = by_tree(), by_both()
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"idle\n"
        assert by_tree() - before[0] >= 0.2
        assert by_both() - before[1] >= 0.2
        assert process_cpu_seconds("not-" + name, root_pid=child.pid)() == 0
    finally:
        child.kill()
        child.wait()


def test_a_cgroup_counts_its_usage_in_seconds(tmp_path):
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert cgroup_cpu_seconds(tmp_path) == 2.5
    assert cgroup_sampler(tmp_path)() == 2.5
    (tmp_path / "cpu.stat").write_text("user_usec 2000000\n")
    with pytest.raises(LookupError):
        cgroup_cpu_seconds(tmp_path)


def test_the_host_share_grows_with_work():
    busy_before, total_before = host_cpu()
    busy(0.3)
    busy_after, total_after = host_cpu()
    assert busy_after - busy_before >= 0.2
    # at most all of it (busy and total are each rounded to a clock tick)
    assert 0 < (busy_after - busy_before) / (total_after - total_before) <= 1 + 1e-6
