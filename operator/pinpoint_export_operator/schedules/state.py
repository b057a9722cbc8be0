"""When a PinpointExportSchedule starts, replaces and deletes exports: one pure function.

`decide(schedule, status, children, now)` returns the runs to start, the children to delete,
when to look again, the new status and the Events. It follows Kubernetes' CronJob controller
(pkg/controller/cronjob: syncCronJob, mostRecentScheduleTime):

- The candidate times are those after max(creation, status.lastScheduleTime), and also after
  now - startingDeadlineSeconds when a deadline is set. Of those not later than now, only the
  most recent starts: never a burst of catch-up runs. Later ones are skipped with a
  MissSchedule warning.
- More than 100 candidates (a long outage, clock skew): the most recent still starts, with a
  TooManyMissedTimes warning.
- Forbid while a run is active: skipped, and lastScheduleTime stays, so the skipped time starts
  late once the active run finishes, if the deadline allows. Replace: the active runs are
  deleted, then the new one starts. Allow: it just starts.
- Suspended: no scheduled run starts; on resume the most recent missed time starts (if the
  deadline allows), as a resumed CronJob's does.
- History: finished exports beyond successful/failedExportsHistoryLimit are deleted, oldest
  first. Exported files are never touched.

Each scheduled run is named `<schedule>-<scheduled time in Unix minutes>`, so a restart between
creating a run and recording it in the status finds that run instead of starting it again.

The trigger annotation: a value different from status.lastTriggerValue starts one run now,
whatever concurrencyPolicy and suspend say (as `kubectl create job --from=cronjob/...` does).
Its export records the value (annotation pinpoint.exports.dev/triggered-by), so a restart before
the status is written sees that the newest triggered run is for this value. The value present
when the schedule is first seen is recorded without a run: re-creating a schedule from Git does
not fire a stale trigger. Runs are named by the minute, so a trigger in a minute that already
has a run waits for the next minute; one in the minute of a due scheduled time shares its run.

Times come from `cron` (schedules, time zones, daylight saving).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pinpoint_export_operator import api
from pinpoint_export_operator.runtime import conditions, timestamps
from pinpoint_export_operator.runtime.errors import bounded
from pinpoint_export_operator.runtime.events import Event
from pinpoint_export_operator.runtime.objects import controller_reference
from pinpoint_export_operator.schedules.cron import MAX_MISSED, Cron, InvalidSpec, most_recent
from pinpoint_export_operator.schedules.status import ScheduleStatus

Status = ScheduleStatus
Spec = dict[str, Any]

POLICIES = ("Forbid", "Allow", "Replace")


# What the reconciler knows.


@dataclass(frozen=True)
class Schedule:
    namespace: str
    name: str
    uid: str
    generation: int | None
    created: datetime
    spec: Spec
    trigger: str | None  # the trigger annotation's value

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Schedule:
        meta = obj["metadata"]
        return cls(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            generation=meta.get("generation"),
            created=timestamps.parse(meta["creationTimestamp"]),
            spec=copy.deepcopy(dict(obj["spec"])),
            trigger=(meta.get("annotations") or {}).get(api.ANNOTATION_TRIGGER),
        )


@dataclass(frozen=True)
class Child:
    """One PinpointExport of the schedule."""

    name: str
    created: datetime
    phase: str | None = None
    completion_time: datetime | None = None
    triggered_by: str | None = None  # the trigger value it was started for; None if scheduled
    deleting: bool = False
    message: str = ""  # its status.message: why it failed, if it did

    @property
    def finished(self) -> bool:
        return self.phase in api.TERMINAL_PHASES

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Child:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        completion = status.get("completionTime")
        return cls(
            name=meta["name"],
            created=timestamps.parse(meta["creationTimestamp"]),
            phase=status.get("phase"),
            completion_time=timestamps.parse(completion) if completion else None,
            triggered_by=(meta.get("annotations") or {}).get(api.ANNOTATION_TRIGGERED_BY),
            deleting=bool(meta.get("deletionTimestamp")),
            message=status.get("message", ""),
        )


# What to do.


@dataclass(frozen=True)
class Run:
    name: str
    scheduled_at: datetime | None  # None: started by the trigger annotation
    trigger: str | None = None


@dataclass(frozen=True)
class Delete:
    name: str
    why: str  # for the Event: "replaced by ..." or "beyond successfulExportsHistoryLimit=3"


@dataclass
class Decision:
    status: Status
    start: list[Run] = field(default_factory=list)
    delete: list[Delete] = field(default_factory=list)
    wake_at: datetime | None = None  # None: only an event (spec, trigger, child) wakes it
    events: list[Event] = field(default_factory=list)
    # Scheduled times newly found missed: each once, as status.lastMissedTime records it, not
    # again at every pass that decides the same miss, nor after a restart.
    missed: int = 0


def decide(
    schedule: Schedule, status: Status, children: Sequence[Child], now: datetime
) -> Decision:
    """What to do at `now`, given the schedule, its status (without status.kopf) and exports."""
    spec = schedule.spec
    new = copy.deepcopy(status)
    decision = Decision(new)
    live = [c for c in children if not c.deleting]
    taken = {c.name for c in children}  # names in use, including those being deleted
    active = [c for c in live if not c.finished]

    _finished(spec, status, live, decision)

    try:
        cron: Cron | None = Cron.parse(spec["schedule"], spec.get("timeZone"))
        problem = None
    except InvalidSpec as error:
        cron, problem = None, error
        decision.events.append(Event("Warning", error.reason, error.message))

    # The trigger first: if a scheduled time falls in the same minute, the two share one run
    # (the name is the same), and an every-minute schedule cannot hold a trigger off forever.
    wakes = [_triggered(schedule, status, children, taken, now, decision)]
    new.pop("nextScheduleTime", None)
    if cron is not None and not spec.get("suspend", False):
        _scheduled(schedule, cron, status, active, taken, now, decision)
        wakes.append(upcoming := cron.next(now))
        if upcoming is not None:
            new["nextScheduleTime"] = timestamps.format(upcoming)
    decision.wake_at = min((w for w in wakes if w is not None), default=None)

    replaced = {d.name for d in decision.delete}
    running = {c.name for c in active if c.name not in replaced}
    running |= {r.name for r in decision.start}
    new["active"] = len(running)
    if running:
        new["activeExports"] = sorted(running)  # by name is by time
    else:
        new.pop("activeExports", None)
    new["observedGeneration"] = schedule.generation
    new["conditions"] = _conditions(spec, new, problem, now, schedule.generation)
    return decision


def _finished(spec: Spec, status: Status, live: list[Child], decision: Decision) -> None:
    """Note finished runs (lastSuccessfulTime, Events) and delete those beyond the limits."""
    was_active = set(status.get("activeExports", []))
    for child in live:
        if child.finished and child.name in was_active:
            decision.events.append(
                Event("Normal", "SawCompletedExport", f"PinpointExport {child.name}: {child.phase}")
            )
    succeeded = _last_end(live, "Succeeded", status.get("lastSuccessfulTime"))
    if succeeded:
        decision.status["lastSuccessfulTime"] = succeeded
    failed = _last_end(live, "Failed", status.get("lastFailedTime"))
    if failed:
        decision.status["lastFailedTime"] = failed
        for child in live:
            if child.phase == "Failed" and child.completion_time == timestamps.parse(failed):
                decision.status["lastFailure"] = bounded(f"{child.name}: {child.message}")
    for phase, key, default in (
        ("Succeeded", "successfulExportsHistoryLimit", 3),
        ("Failed", "failedExportsHistoryLimit", 1),
    ):
        limit = int(spec.get(key, default))
        done = sorted((c for c in live if c.phase == phase), key=lambda c: (c.created, c.name))
        for child in done[: max(0, len(done) - limit)]:
            decision.delete.append(Delete(child.name, f"{phase}, beyond {key}={limit}"))


def _last_end(live: list[Child], phase: str, recorded: str | None) -> str | None:
    """When the latest run that ended in `phase` ended: the live runs' or the one recorded."""
    ends = [c.completion_time for c in live if c.phase == phase and c.completion_time]
    if recorded:
        ends.append(timestamps.parse(recorded))
    return timestamps.format(max(ends)) if ends else None


def _scheduled(
    schedule: Schedule,
    cron: Cron,
    status: Status,
    active: list[Child],
    taken: set[str],
    now: datetime,
    decision: Decision,
) -> None:
    """Start the most recent due scheduled time, if any, as CronJob's rules allow."""
    spec = schedule.spec
    last = status.get("lastScheduleTime")
    earliest = max(schedule.created, timestamps.parse(last)) if last else schedule.created
    deadline = spec.get("startingDeadlineSeconds")
    window_start = earliest
    if deadline is not None:
        # In time: not more than `deadline` seconds late, counted in whole seconds, so that 0
        # still starts a run woken a fraction of a second after its time.
        just_before = now.replace(microsecond=0) - timedelta(seconds=int(deadline), microseconds=1)
        window_start = max(earliest, just_before)
        missed, _ = most_recent(cron, earliest, just_before)
        recorded = status.get("lastMissedTime")
        if missed is not None and (recorded is None or timestamps.parse(recorded) < missed):
            decision.status["lastMissedTime"] = timestamps.format(missed)
            decision.missed += 1
            decision.events.append(
                Event(
                    "Warning",
                    "MissSchedule",
                    f"Missed the run of {timestamps.format(missed)}: more than "
                    f"startingDeadlineSeconds={deadline} late",
                )
            )
    due, too_many = most_recent(cron, window_start, now)
    if due is None:
        return
    if too_many:
        decision.events.append(
            Event(
                "Warning",
                "TooManyMissedTimes",
                f"More than {MAX_MISSED} missed start times: starting only the most recent, "
                f"{timestamps.format(due)}. Set or decrease startingDeadlineSeconds "
                "or check clock skew",
            )
        )
    name = api.schedule_run_name(schedule.name, due)
    if name in taken:
        # Created before a restart cut the status update short: record it, never start it twice.
        decision.status["lastScheduleTime"] = timestamps.format(due)
        return
    policy = spec.get("concurrencyPolicy", "Forbid")
    if active and policy == "Forbid":
        running = ", ".join(c.name for c in active)
        decision.events.append(
            Event(
                "Normal",
                "ExportAlreadyActive",
                f"Not starting the run of {timestamps.format(due)}: {running} still running and "
                "concurrencyPolicy is Forbid",
            )
        )
        return
    if policy == "Replace":
        decision.delete += [Delete(c.name, f"replaced by {name}") for c in active]
    decision.start.append(Run(name, due))
    decision.status["lastScheduleTime"] = timestamps.format(due)
    if too_many:
        decision.missed += 1  # the times skipped over, once: this start moves past them
    taken.add(name)


def _triggered(
    schedule: Schedule,
    status: Status,
    children: Sequence[Child],
    taken: set[str],
    now: datetime,
    decision: Decision,
) -> datetime | None:
    """Start a run for a new trigger value; returns when to try again if this minute is taken."""
    value = schedule.trigger
    if value is None or value == status.get("lastTriggerValue"):
        return None
    if "observedGeneration" not in status:  # never reconciled: the schedule was just created
        decision.status["lastTriggerValue"] = value  # the baseline, not a request
        return None
    triggered = [c for c in children if c.triggered_by is not None]
    newest = max(triggered, key=lambda c: (c.created, c.name), default=None)
    if newest is not None and newest.triggered_by == value:
        decision.status["lastTriggerValue"] = value  # started before a restart
        return None
    name = api.schedule_run_name(schedule.name, now)
    if name in taken:
        # A run already started this minute (scheduled, or an earlier trigger): next minute.
        return now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    decision.start.append(Run(name, None, value))
    decision.status["lastTriggerValue"] = value
    taken.add(name)
    return None


def _conditions(
    spec: Spec, status: Status, problem: InvalidSpec | None, now: datetime, generation: int | None
) -> list[conditions.Condition]:
    failed_at, succeeded_at = status.get("lastFailedTime"), status.get("lastSuccessfulTime")
    if problem is not None:
        reason, message, ready = problem.reason, problem.message, False
    elif failed_at and (not succeeded_at or failed_at > succeeded_at):
        # RFC 3339 UTC strings of one format compare as the times they name.
        reason, ready = "LastRunFailed", False
        detail = status.get("lastFailure") or "see the schedule's PinpointExports"
        message = bounded(f"The last run failed at {failed_at}: {detail}")
    elif spec.get("suspend", False):
        reason, ready = "Suspended", True
        message = "Suspended: no scheduled runs start; the trigger annotation still starts one"
    else:
        reason, ready = "Scheduled", True
        message = f"Runs at '{spec['schedule']}' in {spec.get('timeZone') or 'UTC'}"
    return conditions.summary(
        status.get("conditions", []),
        ready=ready,
        reconciling=False,
        stalled=not ready,
        reason=reason,
        message=message,
        now=timestamps.format(now),
        generation=generation,
    )


def retrying(
    status: Status, reason: str, message: str, now: datetime, generation: int | None
) -> Status:
    """The status while a transient error (the API server's) is retried."""
    new = copy.deepcopy(status)
    new["conditions"] = conditions.set_condition(
        new.get("conditions", []),
        "Reconciling",
        True,
        reason,
        message,
        timestamps.format(now),
        generation,
    )
    return new


def export_manifest(schedule: Schedule, run: Run) -> dict[str, Any]:
    """The PinpointExport of `run`: the template, labelled and owned by the schedule."""
    template = schedule.spec["exportTemplate"]
    meta = template.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    if run.scheduled_at is not None:
        annotations[api.ANNOTATION_SCHEDULED_AT] = timestamps.format(run.scheduled_at)
    else:
        annotations[api.ANNOTATION_TRIGGERED_BY] = run.trigger or ""
    return {
        "apiVersion": api.API_VERSION,
        "kind": "PinpointExport",
        "metadata": {
            "name": run.name,
            "namespace": schedule.namespace,
            "labels": {**(meta.get("labels") or {}), api.LABEL_SCHEDULE: schedule.name},
            "annotations": annotations,
            "ownerReferences": [
                controller_reference(
                    api.API_VERSION, "PinpointExportSchedule", schedule.name, schedule.uid
                )
            ],
        },
        "spec": copy.deepcopy(template["spec"]),
    }
