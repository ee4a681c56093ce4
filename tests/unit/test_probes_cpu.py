"""The CPU samplers: a cgroup's usage, processes from /proc/<pid>/stat, the host's share."""

from __future__ import annotations

import os
import time

import pytest

from livestream_probes.cpu import cgroup_cpu_seconds, cgroup_sampler, host_cpu, process_cpu_seconds, stat_cpu_ticks


def busy(seconds: float) -> None:
    until = time.process_time() + seconds
    while time.process_time() < until:
        pass


def test_cpu_sampler_counts_a_process_tree_or_a_name():
    with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as stat:
        own = stat.read()
    name = own[own.index("(") + 1:own.rindex(")")]
    assert stat_cpu_ticks(own, "not-" + name) == 0
    by_name, by_tree = process_cpu_seconds(name), process_cpu_seconds(root_pid=os.getppid())
    before = by_name(), by_tree()
    busy(0.3)
    assert by_name() - before[0] >= 0.2
    assert by_tree() - before[1] >= 0.2, "this process is a descendant of its parent"
    assert process_cpu_seconds(root_pid=2 ** 22 + 1)() == 0, "no such process, nothing counted"


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
    assert 0 < (busy_after - busy_before) / (total_after - total_before) <= 1
