"""Container states -> pod status, with the kubelet's phase and condition rules.

Pure, so the rules are unit-tested; the pod worker keeps one `ContainerStatus` per container.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pinpoint_export_operator.runtime.timestamps import now

from .node import POD_IP

Json = dict[str, Any]


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""

    def to_json(self) -> Json:
        return {
            "waiting": {
                "reason": self.reason,
                **({"message": self.message} if self.message else {}),
            }
        }


@dataclass(frozen=True)
class Running:
    started_at: str

    def to_json(self) -> Json:
        return {"running": {"startedAt": self.started_at}}


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""

    def to_json(self) -> Json:
        state: Json = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }
        if self.message:
            state["message"] = self.message
        if self.exit_code > 128:
            state["signal"] = self.exit_code - 128
        return {"terminated": state}


State = Waiting | Running | Terminated


@dataclass
class ContainerStatus:
    name: str
    image: str
    state: State
    last_state: Terminated | None = None
    restart_count: int = 0
    container_id: str = ""

    def to_json(self) -> Json:
        status: Json = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "ready": isinstance(self.state, Running),
            "started": isinstance(self.state, Running),
            "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last_state.to_json() if self.last_state else {},
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def _succeeded(status: ContainerStatus) -> bool:
    return isinstance(status.state, Terminated) and status.state.exit_code == 0


def pod_phase(
    restart_policy: str, init: Sequence[ContainerStatus], main: Sequence[ContainerStatus]
) -> str:
    """The kubelet's getPhase."""
    for status in init:
        if _succeeded(status):
            continue
        failed = isinstance(status.state, Terminated) or (
            isinstance(status.state, Waiting) and status.last_state is not None
        )
        return "Failed" if failed and restart_policy == "Never" else "Pending"
    running = waiting = stopped = succeeded = 0
    for status in main:
        if isinstance(status.state, Running):
            running += 1
        elif isinstance(status.state, Terminated):
            stopped += 1
            succeeded += status.state.exit_code == 0
        elif status.last_state is not None:
            stopped += 1  # waiting to restart
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if not stopped:
        return "Pending"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> Json:
    condition: Json = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        condition.update(reason=reason, message=message)
    return condition


def pod_conditions(
    phase: str,
    init: Sequence[ContainerStatus],
    main: Sequence[ContainerStatus],
    sandbox_ready: bool,
) -> list[Json]:
    """The kubelet's pod conditions; without probes a container is ready while it runs."""
    pending_init = [s.name for s in init if not _succeeded(s)]
    unready = [s.name for s in main if not isinstance(s.state, Running)]
    initialized = _condition(
        "Initialized",
        not pending_init,
        "ContainersNotInitialized",
        f"containers with incomplete status: [{' '.join(pending_init)}]",
    )
    if phase == "Succeeded":
        ready = _condition("ContainersReady", False, "PodCompleted", "")
    else:
        ready = _condition(
            "ContainersReady",
            not unready,
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    return [
        _condition("PodReadyToStartContainers", sandbox_ready),
        initialized,
        ready,
        {**ready, "type": "Ready"},
        _condition("PodScheduled", True),
    ]


def with_transition_times(conditions: list[Json], previous: Sequence[Json], at: str) -> list[Json]:
    """Keep a condition's lastTransitionTime while its status does not change."""
    before = {c["type"]: c for c in previous}
    result = []
    for condition in conditions:
        old = before.get(condition["type"])
        same = old is not None and old.get("status") == condition["status"]
        transition = old.get("lastTransitionTime") if same and old else None
        result.append({**condition, "lastTransitionTime": transition or at})
    return result


def pod_status(
    *,
    restart_policy: str,
    init: Sequence[ContainerStatus],
    main: Sequence[ContainerStatus],
    start_time: str,
    sandbox_ready: bool,
    previous_conditions: Sequence[Json],
    failure: tuple[str, str] | None = None,
    stopped: bool = False,
) -> Json:
    """The pod's status. `failure` (reason, message) ends it Failed, as DeadlineExceeded does;
    `stopped` means the agent killed it (deletion), so it is terminal whatever the policy."""
    phase = pod_phase(restart_policy, init, main)
    if failure or (stopped and phase not in ("Succeeded", "Failed")):
        phase = "Failed"
    conditions = pod_conditions(phase, init, main, sandbox_ready)
    status: Json = {
        "phase": phase,
        "conditions": with_transition_times(conditions, previous_conditions, now()),
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": start_time,
        "initContainerStatuses": [s.to_json() for s in init],
        "containerStatuses": [s.to_json() for s in main],
    }
    if failure:
        status["reason"], status["message"] = failure
    return status
