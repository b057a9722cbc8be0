"""The node's CPU groups: where the cgroup v1 `cpu` controller is, quotas, stale groups (a
process in its group on the real hierarchy: test_nodeagent_runtime)."""

from __future__ import annotations

import os
from pathlib import Path

from pinpoint_export_sandbox.nodeagent import cgroups
from pinpoint_export_sandbox.nodeagent.cgroups import cpu_hierarchy, quota_us

MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/cpuset rw,relatime shared:11 - cgroup cgroup rw,cpuset
"""


def test_the_cpu_hierarchy_is_found_by_its_controller_not_its_name() -> None:
    assert cpu_hierarchy(MOUNTINFO) == Path("/sys/fs/cgroup/cpu,cpuacct")
    unified = "40 25 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cpu_hierarchy(unified) is None  # cgroup v2 only: processes are niced instead


def test_a_cpu_limit_is_a_quota_per_period_with_the_kernels_minimum() -> None:
    assert quota_us(0.5) == 50_000
    assert quota_us(2) == 200_000
    assert quota_us(0.001) == 1000


def test_groups_left_by_a_killed_agent_are_removed_those_of_a_live_one_stay(
    tmp_path: Path,
) -> None:
    dead, alive = tmp_path / "node-1-999999999", tmp_path / f"node-1-{os.getpid()}"
    for group in (dead, alive):
        (group / "u_copy").mkdir(parents=True)
    cgroups._remove_stale(tmp_path)
    assert not dead.exists() and (alive / "u_copy").is_dir()
