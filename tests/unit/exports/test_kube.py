"""Reading a copy Job and its pods, as the API server sends them, into what export_state sees."""

from __future__ import annotations

from typing import Any

from pinpoint_export_operator.exports.copy_job import CONTAINER
from pinpoint_export_operator.exports.kube import _copy_job, _termination
from pinpoint_export_operator.runtime.kube_json import namespaced


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "copy-x"}, "status": status}


def pod(name: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {"status": {"containerStatuses": [{"name": name, "state": state}]}}


def test_a_running_job_is_not_finished() -> None:
    observed = _copy_job(job({"active": 1}), summary=None)
    assert (observed.name, observed.active, observed.finished) == ("copy-x", 1, None)


def test_a_complete_job_carries_the_copiers_summary() -> None:
    status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    observed = _copy_job(job(status), summary={"files": 2})
    assert (observed.finished, observed.succeeded, observed.summary) == (
        "Complete",
        1,
        {"files": 2},
    )


def test_a_failed_job_says_why_with_the_copiers_words() -> None:
    failed = {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }
    stale = {"type": "Complete", "status": "False"}
    observed = _copy_job(job({"failed": 3, "conditions": [stale, failed]}), None, "disk full")
    assert observed.finished == "Failed"
    assert observed.failure_message == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit; copier said: disk full"
    )


def test_termination_of_the_copier_container_only() -> None:
    message = 'resuming\n{"files": 1, "bytes": 10}\n'
    assert _termination(pod(CONTAINER, {"exitCode": 0, "message": message})) == (
        0,
        {"files": 1, "bytes": 10},
        message.strip(),
    )
    assert _termination(pod(CONTAINER, {"exitCode": 3, "message": "not json"})) == (
        3,
        None,
        "not json",
    )
    assert _termination(pod("sidecar", {"exitCode": 0})) is None
    assert _termination(pod(CONTAINER, None)) is None
    assert _termination({"status": {}}) is None


def test_paths_of_core_and_group_resources() -> None:
    assert namespaced("v1", "ns", "secrets", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert namespaced("batch/v1", "ns", "jobs") == "/apis/batch/v1/namespaces/ns/jobs"
