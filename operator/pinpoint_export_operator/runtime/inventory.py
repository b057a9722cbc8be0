"""What exists in the cluster, counted for /metrics: exports by phase and reason, schedules by
status.

Fed by the watch events Kopf already receives (no extra API calls), read at scrape time by a
Prometheus collector. Kept per object uid, so a repeated or out-of-order event never counts
an object twice; the gauges it yields are per namespace, and per schedule only if asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pinpoint_export_operator import api
from pinpoint_export_operator.runtime import timestamps


@dataclass(frozen=True)
class _Export:
    namespace: str
    phase: str  # "Unknown" before the operator's first write
    reason: str  # the Ready condition's, one of api.EXPORT_REASONS; "" if none or another
    started: float | None  # status.startTime of an active export, as a Unix time


@dataclass(frozen=True)
class _Schedule:
    namespace: str
    name: str
    status: str  # the Ready condition's reason, "Unknown" before the first write
    last_success: float | None
    last_schedule: float | None


class Inventory(Collector):
    def __init__(self, per_schedule: bool = False) -> None:
        self._exports: dict[str, _Export] = {}
        self._schedules: dict[str, _Schedule] = {}
        self._per_schedule = per_schedule

    def saw_export(self, event: str | None, body: Mapping[str, Any]) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        if event == "DELETED":
            self._exports.pop(meta["uid"], None)
            return
        phase = status.get("phase") or "Unknown"
        active = phase not in api.TERMINAL_PHASES and status.get("startTime")
        started = _unix(status["startTime"]) if active else None
        # A reason this operator does not set (another version's, a hand-edited status) is
        # not a label value: the label's values stay the known set.
        reason = _ready(status).get("reason", "")
        reason = reason if reason in api.EXPORT_REASONS else ""
        self._exports[meta["uid"]] = _Export(meta["namespace"], phase, reason, started)

    def saw_schedule(self, event: str | None, body: Mapping[str, Any]) -> None:
        meta, status = body["metadata"], body.get("status") or {}
        if event == "DELETED":
            self._schedules.pop(meta["uid"], None)
            return
        self._schedules[meta["uid"]] = _Schedule(
            meta["namespace"],
            meta["name"],
            _ready(status).get("reason", "Unknown"),
            _unix(status.get("lastSuccessfulTime")),
            _unix(status.get("lastScheduleTime")),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        exports = GaugeMetricFamily(
            "pinpoint_exports",
            "PinpointExports by namespace, phase and reason (their Ready condition's).",
            labels=["namespace", "phase", "reason"],
        )
        for labels, count in Counter(
            (e.namespace, e.phase, e.reason) for e in self._exports.values()
        ).items():
            exports.add_metric(list(labels), count)
        yield exports
        oldest = GaugeMetricFamily(
            "pinpoint_export_oldest_active_start_timestamp_seconds",
            "When the oldest export still running in the namespace started (Unix time).",
            labels=["namespace"],
        )
        starts: dict[str, float] = {}
        for e in self._exports.values():
            if e.started is not None:
                starts[e.namespace] = min(e.started, starts.get(e.namespace, e.started))
        for namespace, started in starts.items():
            oldest.add_metric([namespace], started)
        yield oldest
        schedules = GaugeMetricFamily(
            "pinpoint_export_schedules",
            "PinpointExportSchedules by namespace and status (their Ready condition's reason: "
            "Scheduled, Suspended, LastRunFailed, InvalidSchedule, InvalidTimeZone).",
            labels=["namespace", "status"],
        )
        for (namespace, status), count in Counter(
            (s.namespace, s.status) for s in self._schedules.values()
        ).items():
            schedules.add_metric([namespace, status], count)
        yield schedules
        if self._per_schedule:
            yield from self._schedule_times()

    def _schedule_times(self) -> Iterator[GaugeMetricFamily]:
        for field, what in (("last_success", "succeeded"), ("last_schedule", "was scheduled")):
            family = GaugeMetricFamily(
                f"pinpoint_export_schedule_{field}_timestamp_seconds",
                f"When each schedule's last run {what} (Unix time; --metrics-per-schedule).",
                labels=["namespace", "schedule"],
            )
            for s in self._schedules.values():
                value = getattr(s, field)
                if value is not None:
                    family.add_metric([s.namespace, s.name], value)
            yield family


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Ready condition of a status, or {}."""
    conditions = status.get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def _unix(value: str | None) -> float | None:
    return timestamps.parse(value).timestamp() if value else None
