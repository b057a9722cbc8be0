"""The node agent's pod status: the kubelet's phase and condition rules."""

from __future__ import annotations

from typing import Any

import pytest

from pinpoint_export_sandbox.nodeagent.status import (
    ContainerStatus,
    Running,
    State,
    Terminated,
    Waiting,
    pod_phase,
    pod_status,
    with_transition_times,
)

T = "2025-01-01T00:00:00Z"


def c(name: str, state: State, last: Terminated | None = None) -> ContainerStatus:
    return ContainerStatus(name, "busybox", state, last_state=last)


def ok() -> Terminated:
    return Terminated(0, "Completed", T, T)


def failed(code: int = 1) -> Terminated:
    return Terminated(code, "Error", T, T)


@pytest.mark.parametrize(
    ("policy", "init", "main", "phase"),
    [
        ("Never", [], [c("a", Waiting("ContainerCreating"))], "Pending"),
        ("Never", [], [c("a", Running(T))], "Running"),
        ("Never", [], [c("a", ok())], "Succeeded"),
        ("Never", [], [c("a", failed())], "Failed"),
        ("Never", [], [c("a", failed()), c("b", Running(T))], "Running"),
        ("Never", [], [c("a", ok()), c("b", failed())], "Failed"),
        ("OnFailure", [], [c("a", failed())], "Running"),
        ("OnFailure", [], [c("a", Waiting("CrashLoopBackOff"), failed())], "Running"),
        ("OnFailure", [], [c("a", ok())], "Succeeded"),
        ("Always", [], [c("a", ok())], "Running"),
        ("Never", [c("i", Running(T))], [c("a", Waiting("PodInitializing"))], "Pending"),
        ("Never", [c("i", failed())], [c("a", Waiting("PodInitializing"))], "Failed"),
        ("OnFailure", [c("i", failed())], [c("a", Waiting("PodInitializing"))], "Pending"),
        ("Never", [c("i", ok())], [c("a", Running(T))], "Running"),
    ],
)
def test_pod_phase(
    policy: str, init: list[ContainerStatus], main: list[ContainerStatus], phase: str
) -> None:
    assert pod_phase(policy, init, main) == phase


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    entries = status["conditions"]
    return {e["type"]: (e["status"], e.get("reason")) for e in entries}


def test_status_of_a_running_pod() -> None:
    status = pod_status(
        restart_policy="Never",
        init=[c("init", ok())],
        main=[c("a", Running(T))],
        start_time=T,
        sandbox_ready=True,
        previous_conditions=[],
    )
    assert status["phase"] == "Running"
    assert (status["podIP"], status["hostIP"], status["startTime"]) == ("127.0.0.1", "127.0.0.1", T)
    assert conditions(status) == {
        "PodReadyToStartContainers": ("True", None),
        "Initialized": ("True", None),
        "ContainersReady": ("True", None),
        "Ready": ("True", None),
        "PodScheduled": ("True", None),
    }
    (main,) = status["containerStatuses"]
    assert main["state"] == {"running": {"startedAt": T}}
    assert (main["ready"], main["started"], main["restartCount"]) == (True, True, 0)


def test_status_of_a_finished_pod() -> None:
    terminated = Terminated(143, "Error", T, T, "bye")
    status = pod_status(
        restart_policy="Never",
        init=[],
        main=[c("a", terminated), c("b", ok())],
        start_time=T,
        sandbox_ready=True,
        previous_conditions=[],
    )
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"] == {
        "terminated": {
            "exitCode": 143,
            "signal": 15,
            "reason": "Error",
            "message": "bye",
            "startedAt": T,
            "finishedAt": T,
        }
    }
    succeeded = pod_status(
        restart_policy="Never",
        init=[],
        main=[c("a", ok())],
        start_time=T,
        sandbox_ready=True,
        previous_conditions=[],
    )
    assert conditions(succeeded)["Ready"] == ("False", "PodCompleted")


def test_waiting_on_init_containers() -> None:
    status = pod_status(
        restart_policy="Never",
        init=[c("one", ok()), c("two", Running(T))],
        main=[c("a", Waiting("PodInitializing"))],
        start_time=T,
        sandbox_ready=True,
        previous_conditions=[],
    )
    initialized = next(e for e in status["conditions"] if e["type"] == "Initialized")
    assert initialized["message"] == "containers with incomplete status: [two]"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_deadline_and_deletion_make_the_pod_failed() -> None:
    common: dict[str, Any] = {
        "init": [],
        "main": [c("a", Running(T))],
        "start_time": T,
        "sandbox_ready": True,
        "previous_conditions": [],
    }
    deadline = pod_status(
        restart_policy="Always", failure=("DeadlineExceeded", "too long"), **common
    )
    assert (deadline["phase"], deadline["reason"], deadline["message"]) == (
        "Failed",
        "DeadlineExceeded",
        "too long",
    )
    deleted = pod_status(restart_policy="OnFailure", stopped=True, **common)
    assert deleted["phase"] == "Failed" and "reason" not in deleted


def test_transition_times_are_kept_while_the_status_holds() -> None:
    previous = [
        {"type": "Ready", "status": "False", "lastTransitionTime": "old"},
        {"type": "Initialized", "status": "True", "lastTransitionTime": "old"},
    ]
    current = [
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
        {"type": "X", "status": "True"},
    ]
    times = {
        e["type"]: e["lastTransitionTime"] for e in with_transition_times(current, previous, "now")
    }
    assert times == {"Ready": "now", "Initialized": "old", "X": "now"}
