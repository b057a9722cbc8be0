"""The node's pods under one CPU group, as a kubelet's cgroupfs driver lays them out on
cgroup v1: a pods group weighted by the node's CPUs (cpu.shares 1024 per CPU), and under it
a group per container weighted by its request and capped by its limit (CFS quota).

The control plane, the emulator and the operator run outside it with the weight of one
process each, so a node full of busy pods cannot take the whole machine from them. Without it,
110 copy pods at their requests' weight took 92% of the CPU from a busy API server, which on a
real cluster runs on other machines. Without a writable cgroup v1 `cpu` hierarchy (cgroup v2
only, or not root), a process gets the nice value closest to its container's weight instead
(`plan.cpu_nice`); containers run by podman get their weight from podman.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PARENT = "pinpoint-export-sandbox"  # beside the host's own groups; one child per node agent
CFS_PERIOD_US = 100_000  # the kubelet's


def cpu_hierarchy(mountinfo: str) -> Path | None:
    """Where the cgroup v1 `cpu` controller is mounted, from /proc/self/mountinfo."""
    for line in mountinfo.splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3].split(",")
        if fstype == "cgroup" and "cpu" in options:
            return Path(fields[4])
    return None


def quota_us(cpus: float) -> int:
    """The CFS quota of a CPU limit per period, at least the kernel's 1 ms minimum."""
    return max(1000, int(cpus * CFS_PERIOD_US))


@dataclass(frozen=True)
class PodsGroup:
    path: Path

    @classmethod
    def create(cls, node: str, cpus: int) -> PodsGroup | None:
        """The node's pods group, weighted by `cpus`; None where groups cannot be made."""
        if os.geteuid() != 0:
            return None
        try:
            hierarchy = cpu_hierarchy(Path("/proc/self/mountinfo").read_text())
            if hierarchy is None:
                return None
            parent = hierarchy / PARENT
            parent.mkdir(exist_ok=True)
            _remove_stale(parent)
            path = parent / f"{node}-{os.getpid()}"
            path.mkdir(exist_ok=True)
            (path / "cpu.shares").write_text(str(1024 * cpus))
        except OSError as error:
            log.warning("no CPU group for the pods (%s): their processes are niced instead", error)
            return None
        return cls(path)

    def container(self, key: str, shares: int, cpu_limit: float | None) -> Path:
        """A container's group: made, weighted and capped; its `cgroup.procs` to join."""
        path = self.path / key
        path.mkdir(exist_ok=True)
        (path / "cpu.shares").write_text(str(shares))
        if cpu_limit is not None:
            (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota_us(cpu_limit)))
        return path / "cgroup.procs"

    def release(self, key: str) -> None:
        """Remove a container's group once its processes are gone."""
        with contextlib.suppress(OSError):
            (self.path / key).rmdir()

    def close(self) -> None:
        _remove(self.path)
        with contextlib.suppress(OSError):  # the last agent out
            self.path.parent.rmdir()


def _remove(group: Path) -> None:
    """Remove a group and its (empty) children; groups still holding processes stay."""
    with contextlib.suppress(OSError):
        for child in group.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        group.rmdir()


def _remove_stale(parent: Path) -> None:
    """The groups of node agents that are gone (killed before they could remove theirs)."""
    for group in parent.iterdir():
        pid = group.name.rsplit("-", 1)[-1]
        if group.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove(group)
