"""/metrics: the inventory's gauges, the names Prometheus's conventions ask for, bounded labels."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from kubernetes import client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from pinpoint_export_operator.runtime import metrics
from pinpoint_export_operator.runtime.errors import kubernetes_error
from pinpoint_export_operator.runtime.inventory import Inventory
from pinpoint_export_operator.runtime.kube_json import KubeJson, resource_of

from .docs_tables import OPERATIONS, ROOT, code, section, tables

Metric = tuple[str, tuple[str, ...]]  # type, label names


def export(
    uid: str, namespace: str, phase: str | None, start: str | None = None, reason: str = ""
) -> Any:
    status = {"phase": phase, "startTime": start} if phase else {}
    if reason:
        status["conditions"] = [{"type": t, "reason": reason} for t in ("Stalled", "Ready")]
    return {"metadata": {"uid": uid, "namespace": namespace, "name": uid}, "status": status}


def schedule(uid: str, reason: str | None, **status: Any) -> Any:
    conditions = [{"type": "Ready", "reason": reason}] if reason else []
    return {
        "metadata": {"uid": uid, "namespace": "ns", "name": f"s-{uid}"},
        "status": {"conditions": conditions, **status},
    }


def scrape(inventory: Inventory) -> str:
    registry = CollectorRegistry()
    registry.register(inventory)
    return generate_latest(registry).decode()


def test_exports_are_counted_once_per_object_by_namespace_and_phase() -> None:
    inventory = Inventory()
    inventory.saw_export("ADDED", export("a", "team-a", None))
    exporting = export("a", "team-a", "Exporting", "2026-11-28T10:00:00Z", "Exporting")
    inventory.saw_export("MODIFIED", exporting)
    inventory.saw_export("MODIFIED", exporting)
    inventory.saw_export(
        "ADDED", export("b", "team-a", "Exporting", "2026-11-28T09:00:00Z", "Exporting")
    )
    inventory.saw_export(
        "ADDED", export("c", "team-b", "Failed", "2026-11-28T08:00:00Z", "CopyFailed")
    )
    inventory.saw_export("ADDED", export("d", "team-b", "Succeeded", reason="Succeeded"))
    inventory.saw_export("DELETED", export("d", "team-b", "Succeeded", reason="Succeeded"))
    text = scrape(inventory)
    assert 'pinpoint_exports{namespace="team-a",phase="Exporting",reason="Exporting"} 2.0' in text
    assert 'pinpoint_exports{namespace="team-b",phase="Failed",reason="CopyFailed"} 1.0' in text
    assert "Succeeded" not in text
    # The oldest running export, for "stuck" alerts; finished ones do not count.
    oldest = 'pinpoint_export_oldest_active_start_timestamp_seconds{namespace="team-a"}'
    started = datetime(2026, 11, 28, 9, tzinfo=UTC).timestamp()  # b, the older of the two
    assert f"{oldest} {started:.7e}" in text
    assert 'oldest_active_start_timestamp_seconds{namespace="team-b"}' not in text


def test_an_exports_reason_is_its_ready_conditions_and_only_a_known_one() -> None:
    inventory = Inventory()
    inventory.saw_export("ADDED", export("a", "ns", None))  # not written yet: no condition
    inventory.saw_export("ADDED", export("b", "ns", "Exporting", reason="Throttled"))
    inventory.saw_export("ADDED", export("c", "ns", "Exporting", reason="SomeLaterReason"))
    text = scrape(inventory)
    assert 'pinpoint_exports{namespace="ns",phase="Unknown",reason=""} 1.0' in text
    assert 'pinpoint_exports{namespace="ns",phase="Exporting",reason="Throttled"} 1.0' in text
    assert 'pinpoint_exports{namespace="ns",phase="Exporting",reason=""} 1.0' in text
    assert "SomeLaterReason" not in text


def test_schedules_by_status_and_per_schedule_times_only_when_asked() -> None:
    inventory = Inventory()
    inventory.saw_schedule("ADDED", schedule("1", None))
    inventory.saw_schedule("ADDED", schedule("2", "LastRunFailed"))
    inventory.saw_schedule(
        "ADDED", schedule("3", "Scheduled", lastSuccessfulTime="2026-11-28T10:00:00Z")
    )
    text = scrape(inventory)
    assert 'pinpoint_export_schedules{namespace="ns",status="LastRunFailed"} 1.0' in text
    assert 'pinpoint_export_schedules{namespace="ns",status="Unknown"} 1.0' in text
    assert "s-3" not in text  # no per-object label by default
    per_schedule = Inventory(per_schedule=True)
    per_schedule.saw_schedule(
        "ADDED", schedule("3", "Scheduled", lastSuccessfulTime="2026-11-28T10:00:00Z")
    )
    line = 'pinpoint_export_schedule_last_success_timestamp_seconds{namespace="ns",schedule="s-3"}'
    assert line in scrape(per_schedule)


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/ns/pods", "pods"),
        ("/apis/batch/v1/namespaces/ns/jobs/nightly-copy", "jobs"),
        (
            "/apis/pinpoint.exports.dev/v1alpha1/namespaces/ns/pinpointexports/x/status",
            "pinpointexports/status",
        ),
        ("/apis/pinpoint.exports.dev/v1alpha1", "discovery"),
        ("/api/v1/namespaces/ns/secrets/keys?x=1", "secrets"),
    ],
)
def test_kubernetes_calls_are_labelled_by_resource_never_by_name(path: str, resource: str) -> None:
    assert resource_of(path) == resource


def test_names_follow_prometheus_conventions_and_the_process_collectors_are_kept() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    names = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    ours = {(n, t) for n, t in names if n.startswith("pinpoint_export")}
    for name, kind in ours:
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
    assert ("process_resident_memory_bytes", "gauge") in names
    assert ("python_gc_objects_collected_total", "counter") in names
    assert "_created" not in text  # no creation-time series beside every counter
    assert 'pinpoint_export_build_info{version="' in text


def test_a_measured_pool_records_each_calls_wait_for_a_thread() -> None:
    pool = metrics.MeasuredPool(1, "test")
    try:
        assert [f.result() for f in [pool.submit(pow, 2, n) for n in range(3)]] == [1, 2, 4]
    finally:
        pool.shutdown()
    text = generate_latest(metrics.REGISTRY).decode()
    assert 'pinpoint_export_pool_wait_seconds_count{pool="test"} 3.0' in text


def registered() -> dict[str, Metric]:
    """The operator's metrics, by the name a scrape shows (a counter's with `_total`): those
    of the registry, and the inventory's (the per-schedule ones included), each fed an object
    so that its labels show."""
    found: dict[str, Metric] = {}
    # The registry lists its collectors only privately; ours are the metric objects in it.
    for metric in list(metrics.REGISTRY._collector_to_names):
        if isinstance(metric, MetricWrapperBase):
            suffix = "_total" if metric._type == "counter" else ""
            found[metric._name + suffix] = (metric._type, tuple(metric._labelnames))
    inventory = Inventory(per_schedule=True)
    inventory.saw_export("ADDED", export("a", "ns", "Exporting", "2026-11-28T10:00:00Z"))
    times = {
        "lastSuccessfulTime": "2026-11-28T10:00:00Z",
        "lastScheduleTime": "2026-11-28T10:00:00Z",
    }
    inventory.saw_schedule("ADDED", schedule("1", "Scheduled", **times))
    for family in inventory.collect():
        found[family.name] = (family.type, tuple(family.samples[0].labels))
    return found


def documented(markdown: str) -> dict[str, Metric]:
    """The first table with a `metric` column: labels are the backticked names outside
    parentheses (which hold example values)."""
    (rows,) = [rows for rows in tables(markdown) if "metric" in rows[0]][:1]
    found: dict[str, Metric] = {}
    for row in rows:
        labels = tuple(code(re.sub(r"\([^)]*\)", "", row["labels"])))
        for name in code(row["metric"]):
            found[name] = (row["type"], labels)
    return found


@pytest.mark.parametrize(
    ("path", "heading"), [(OPERATIONS, "## Metrics"), (ROOT / "README.md", "## Monitoring")]
)
def test_every_metric_is_in_the_tables_of_the_docs_and_the_readme(path: Any, heading: str) -> None:
    ours = registered()
    assert len(ours) >= 18 and ours["pinpoint_exports"] == (
        "gauge",
        ("namespace", "phase", "reason"),
    )
    table = documented(section(path.read_text(), heading))
    assert set(ours) - set(table) == set(), f"registered, missing from {path.name}"
    assert set(table) - set(ours) == set(), f"in {path.name}, never registered"
    wrong = {name: (table[name], ours[name]) for name in ours if table[name] != ours[name]}
    assert not wrong, f"{path.name}: (documented, registered) type and labels differ: {wrong}"


class UnreachableApi(client.ApiClient):
    """An API server that never answers: the transport's own error, as urllib3 raises it."""

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        raise urllib3.exceptions.MaxRetryError(None, "/apis/batch/v1", "connection refused")  # type: ignore[arg-type]


def test_a_kubernetes_request_without_an_answer_is_counted_and_retried() -> None:
    """During an API server outage the call metrics show the failures, and the status says
    the API server is unavailable (transient), not that the operator has a bug."""

    def failures() -> float:
        labels = {"service": "kubernetes", "operation": "GET jobs", "code": "MaxRetryError"}
        return metrics.REGISTRY.get_sample_value("pinpoint_export_call_errors_total", labels) or 0

    before = failures()
    kube = KubeJson(UnreachableApi(), observe=metrics.observe_kubernetes)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as raised:
        kube.get("/apis/batch/v1/namespaces/ns/jobs/x")
    assert failures() - before == 1
    error = kubernetes_error(raised.value, "ObserveCopyJob")
    assert (error.reason, error.transient) == ("KubernetesUnavailable", True)
    assert error.message == "ObserveCopyJob: no answer from the Kubernetes API (MaxRetryError)"
