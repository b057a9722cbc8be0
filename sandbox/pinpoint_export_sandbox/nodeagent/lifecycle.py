"""The kubelet's rules for a pod's life on the node, which the pod worker applies.

When a pod is over or being deleted, when its activeDeadlineSeconds runs out, how long its
containers get between SIGTERM and SIGKILL, whether an exited container restarts and how long it
backs off first, and how a container lost with a previous agent ended. Pure, like `status`.
"""

from __future__ import annotations

from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_operator.runtime.timestamps import now

from .status import Json, Terminated

INITIAL_BACKOFF = 1.0  # the kubelet's is 10s to 5min; shorter suits tests and demos
MAX_BACKOFF = 30.0
SHUTDOWN_GRACE = 2.0  # when the agent itself stops
DEADLINE = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
LOST = "The container could not be located when the pod was terminated"


def is_terminal(pod: Json) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_deleting(pod: Json) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def active_deadline(pod: Json, start_time: str) -> float | None:
    """When the pod's activeDeadlineSeconds run out (epoch seconds); None without a deadline."""
    seconds = pod["spec"].get("activeDeadlineSeconds")
    return None if seconds is None else timestamps.parse(start_time).timestamp() + seconds


def grace_period(pod: Json, agent_stopping: bool) -> float:
    """Seconds the pod's containers get between SIGTERM and SIGKILL."""
    if agent_stopping:
        return SHUTDOWN_GRACE
    metadata = pod["metadata"]
    if is_deleting(pod) and metadata.get("deletionGracePeriodSeconds") is not None:
        return float(metadata["deletionGracePeriodSeconds"])
    return float(pod["spec"].get("terminationGracePeriodSeconds", 30))


def restarts(restart_policy: str, init: bool, exit_code: int) -> bool:
    """Whether a container that exited with `exit_code` starts again under the restart policy."""
    return (restart_policy == "Always" and not init) or (
        restart_policy != "Never" and exit_code != 0
    )


def lost_state(state: Json, start_time: str) -> Terminated:
    """How a container that ran under a previous agent ended: as that agent recorded, or lost
    (exit code 137) if it was still running."""
    ended = state.get("terminated")
    started = (ended or state.get("running") or {}).get("startedAt") or start_time
    return (
        Terminated(
            ended.get("exitCode", 0),
            ended.get("reason", ""),
            started,
            ended.get("finishedAt") or now(),
            ended.get("message", ""),
        )
        if ended
        else Terminated(137, "ContainerStatusUnknown", started, now(), LOST)
    )
