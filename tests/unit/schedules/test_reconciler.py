"""The schedule reconciler with a fake Kubernetes adapter: what it creates, patches and posts."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.runtime import events as events_module
from pinpoint_export_operator.runtime import metrics
from pinpoint_export_operator.runtime.adopt import Created
from pinpoint_export_operator.runtime.events import PostedOnce
from pinpoint_export_operator.runtime.objects import own_status
from pinpoint_export_operator.runtime.wakeups import Wakeups
from pinpoint_export_operator.schedules.reconciler import ScheduleReconciler

from ..logs import Logger

TEMPLATE = {"spec": {"applicationId": "0123456789abcdef0123456789abcdef"}}


class FakeKube:
    def __init__(self, exports: list[dict[str, Any]] | None = None) -> None:
        self.exports = exports or []
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.patches: list[dict[str, Any]] = []
        self.create_result = Created.CREATED
        self.fail_create: client.ApiException | None = None

    def list_exports(self, namespace: str, schedule: str, uid: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.exports)

    def create_export(self, manifest: dict[str, Any]) -> Created:
        if self.fail_create is not None:
            raise self.fail_create
        self.created.append(manifest)
        if self.create_result is Created.CREATED:  # listed from now on, as by the API server
            meta = {**manifest["metadata"], "creationTimestamp": "2026-06-01T00:00:01Z"}
            self.exports.append({**manifest, "metadata": meta})
        return self.create_result

    def delete_export(self, namespace: str, name: str) -> None:
        self.deleted.append(name)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append(status)


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def event(body: Any, *, type: str, reason: str, message: str) -> None:
        posted.append((type, reason, message))

    monkeypatch.setattr(events_module.kopf, "event", event)
    return posted


def body(status: dict[str, Any] | None = None, trigger: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "namespace": "ns",
        "name": "nightly",
        "uid": "uid-1",
        "generation": 1,
        "creationTimestamp": "2026-06-01T00:00:00Z",
        "annotations": {api.ANNOTATION_TRIGGER: trigger} if trigger else {},
    }
    spec = {"schedule": "@yearly", "exportTemplate": TEMPLATE}
    return {"metadata": meta, "spec": spec, "status": status or {}}


def reconcile(kube: FakeKube, obj: dict[str, Any]) -> Any:
    """One pass on `obj` as the daemon's first: returns when it wakes next."""
    reconciler = ScheduleReconciler(kube, Wakeups())  # type: ignore[arg-type]
    pass_ = reconciler._reconcile(obj, own_status(obj), PostedOnce(), Logger())  # type: ignore[arg-type]
    wake_at, _ = asyncio.run(pass_)
    return wake_at


def test_first_pass_records_the_status_and_keeps_kopfs_records(
    events: list[tuple[str, str, str]],
) -> None:
    kube = FakeKube()
    wake_at = reconcile(kube, body({"kopf": {"progress": {}}}))
    (patch,) = kube.patches
    assert "kopf" not in patch  # never rewritten, never removed
    assert patch["nextScheduleTime"] == "2027-01-01T00:00:00Z"
    assert wake_at.isoformat() == "2027-01-01T00:00:00+00:00"
    assert kube.created == [] and events == []


def test_nothing_changed_nothing_written(events: list[tuple[str, str, str]]) -> None:
    kube = FakeKube()
    reconcile(kube, body())
    written = kube.patches[-1]
    again = FakeKube()
    reconcile(again, body({**written, "kopf": {"x": 1}}))
    assert again.patches == []


def test_a_trigger_creates_an_export_and_removed_fields_are_nulled(
    events: list[tuple[str, str, str]],
) -> None:
    kube = FakeKube()
    status = {"observedGeneration": 1, "lastTriggerValue": "a", "nextScheduleTime": "x"}
    suspended = body(status, trigger="b")
    suspended["spec"]["suspend"] = True  # a trigger still runs; nothing is next
    reconcile(kube, suspended)
    (manifest,) = kube.created
    assert manifest["metadata"]["annotations"][api.ANNOTATION_TRIGGERED_BY] == "b"
    (patch,) = kube.patches
    assert patch["nextScheduleTime"] is None  # a merge patch removes what the decision dropped
    assert patch["lastTriggerValue"] == "b" and patch["active"] == 1
    assert [e[1] for e in events] == ["SuccessfulCreate"]


def test_a_pass_before_the_body_shows_the_last_write_repeats_nothing(
    events: list[tuple[str, str, str]],
) -> None:
    """Woken again before its own status write's event has reached Kopf's body, the daemon
    neither writes the status again (its conditions' times would move) nor starts the run."""
    kube = FakeKube()
    reconciler = ScheduleReconciler(kube, Wakeups())  # type: ignore[arg-type]
    posted = PostedOnce()
    stale = body({"observedGeneration": 1}, trigger="b")
    written = own_status(stale)
    for _ in range(2):
        pass_ = reconciler._reconcile(stale, written, posted, Logger())  # type: ignore[arg-type]
        _, written = asyncio.run(pass_)
    assert len(kube.created) == 1 and len(kube.patches) == 1
    assert written["lastTriggerValue"] == "b"


def test_a_name_taken_by_someone_else_is_a_warning(events: list[tuple[str, str, str]]) -> None:
    kube = FakeKube()
    kube.create_result = Created.TAKEN
    reconcile(kube, body({"observedGeneration": 1}, trigger="b"))
    assert [e[:2] for e in events] == [("Warning", "ExportNameTaken")]


def test_a_failed_create_is_raised_after_a_warning(events: list[tuple[str, str, str]]) -> None:
    kube = FakeKube()
    kube.fail_create = client.ApiException(status=500, reason="Internal Server Error")
    with pytest.raises(client.ApiException):
        reconcile(kube, body({"observedGeneration": 1}, trigger="b"))
    assert [e[1] for e in events] == ["FailedCreate"]
    assert kube.patches == []  # the status is not written; the next pass decides again


def test_history_deletes_are_reported(events: list[tuple[str, str, str]]) -> None:
    old = {
        "metadata": {"name": "nightly-1", "creationTimestamp": "2026-06-01T01:00:00Z"},
        "status": {"phase": "Failed", "completionTime": "2026-06-01T01:01:00Z"},
    }
    new = copy.deepcopy(old)
    new["metadata"].update(name="nightly-2", creationTimestamp="2026-06-01T02:00:00Z")
    kube = FakeKube([old, new])
    reconcile(kube, body({"observedGeneration": 1}))
    assert kube.deleted == ["nightly-1"]
    assert [e[1] for e in events] == ["SuccessfulDelete"]
    assert "files stay" in events[0][2]


def test_repeated_warnings_are_posted_once_per_daemon(
    events: list[tuple[str, str, str]],
) -> None:
    reconciler = ScheduleReconciler(FakeKube(), Wakeups())  # type: ignore[arg-type]
    posted = PostedOnce()
    obj = body({"observedGeneration": 1})
    obj["spec"]["timeZone"] = "Mars/Olympus"
    written = own_status(obj)
    for _ in range(3):
        pass_ = reconciler._reconcile(obj, written, posted, Logger())  # type: ignore[arg-type]
        _, written = asyncio.run(pass_)
    assert [e[1] for e in events] == ["InvalidTimeZone"]


def test_errors_show_as_reconciling(events: list[tuple[str, str, str]]) -> None:
    kube = FakeKube()
    reconciler = ScheduleReconciler(kube, Wakeups())  # type: ignore[arg-type]
    error = client.ApiException(status=503, reason="Service Unavailable")
    obj = body({"observedGeneration": 1})
    written = asyncio.run(reconciler._report(obj, own_status(obj), error, Logger()))  # type: ignore[arg-type]
    (patch,) = kube.patches
    assert written == patch
    (condition,) = patch["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Reconciling",
        "True",
        "KubernetesUnavailable",
    )


def test_a_missed_run_is_counted_once_however_many_passes_and_restarts_see_it(
    events: list[tuple[str, str, str]],
) -> None:
    """Every pass decides the miss again (nothing moves lastScheduleTime); the counter behind
    the missed-runs alert must grow by one, not by one per pass or per restart."""
    reconciler = ScheduleReconciler(FakeKube(), Wakeups())  # type: ignore[arg-type]
    posted = PostedOnce()
    obj = body({"observedGeneration": 1})
    # Created in June: this month's first run is long past its one-second deadline (unless the
    # test runs within a second of it).
    obj["spec"].update(schedule="@monthly", startingDeadlineSeconds=1)
    before = missed_runs("ns")
    written = own_status(obj)
    for _ in range(3):
        pass_ = reconciler._reconcile(obj, written, posted, Logger())  # type: ignore[arg-type]
        _, written = asyncio.run(pass_)
    assert [e[1] for e in events] == ["MissSchedule"]
    assert missed_runs("ns") - before == 1
    # A restart (a new daemon, a new process) reads the miss from the status: not again.
    restarted = ScheduleReconciler(FakeKube(), Wakeups())  # type: ignore[arg-type]
    pass_ = restarted._reconcile(obj, written, PostedOnce(), Logger())  # type: ignore[arg-type]
    asyncio.run(pass_)
    assert [e[1] for e in events] == ["MissSchedule"]
    assert missed_runs("ns") - before == 1


def missed_runs(namespace: str) -> float:
    sample = "pinpoint_export_schedule_missed_runs_total"
    return metrics.REGISTRY.get_sample_value(sample, {"namespace": namespace}) or 0.0
