"""The node the agent stands in for: its address, what it reports as allocatable, and the facts
about it (`Host`) that a pod's launch plan depends on.
"""

from __future__ import annotations

from dataclasses import dataclass

POD_IP = "127.0.0.1"
# What the node reports as allocatable; also what resourceFieldRef reads for unset limits.
# `pods` is the kubelet's default maxPods, and the binder honours it as the scheduler would:
# every running container is a real process here, so a burst of pods must queue, not swap.
MAX_PODS = 110
ALLOCATABLE = {"cpu": "16", "memory": "64Gi", "pods": str(MAX_PODS), "ephemeral-storage": "100Gi"}


@dataclass(frozen=True)
class Host:
    """Facts about the node the plan depends on."""

    node_name: str
    api_host: str
    api_port: int
    python: str  # the interpreter the operator image's entrypoint maps to
    # Where the operator image's files live on the host (the virtual environment, the
    # package): mounted read-only at the same paths, over any pod volume that would hide them.
    image_paths: tuple[str, ...] = ()
