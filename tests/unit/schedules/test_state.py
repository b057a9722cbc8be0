"""The scheduling decision of a PinpointExportSchedule, on a fake clock.

`decide` is pure, so a "clock" here is just the `now` handed to it: `simulate` replays a schedule
from one instant to another, jumping from each decision's wake-up to the next, as the daemon
does, and records which scheduled times started.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from pinpoint_export_operator import api
from pinpoint_export_operator.runtime.timestamps import format as format_time
from pinpoint_export_operator.runtime.timestamps import parse as parse_time
from pinpoint_export_operator.schedules.cron import MACROS, Cron, InvalidSpec
from pinpoint_export_operator.schedules.state import (
    Child,
    Decision,
    Schedule,
    decide,
    export_manifest,
)

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"team": "marketing"}, "annotations": {"note": "nightly"}},
    "spec": {
        "applicationId": "0123456789abcdef0123456789abcdef",
        "roleArn": "arn:aws:iam::123456789012:role/PinpointExportToS3",
        "s3UrlPrefix": "s3://pinpoint-exports/endpoints/",
        "destination": {"claimName": "exports", "path": "marketing/nightly"},
    },
}
SEEN = {"observedGeneration": 1}  # a status the operator has written before


def at(text: str) -> datetime:
    return parse_time(text)


def make(
    schedule: str = "0 2 * * *",
    created: str = "2026-01-01T00:00:00Z",
    trigger: str | None = None,
    **spec: Any,
) -> Schedule:
    return Schedule(
        namespace="ns",
        name="nightly",
        uid="uid-1",
        generation=1,
        created=at(created),
        spec={"schedule": schedule, "exportTemplate": TEMPLATE, **spec},
        trigger=trigger,
    )


def run_at(scheduled: str, phase: str | None = "Exporting", **fields: Any) -> Child:
    """The child of the run scheduled at `scheduled`, created then."""
    return Child(
        name=api.schedule_run_name("nightly", at(scheduled)),
        created=at(scheduled),
        phase=phase,
        **fields,
    )


def finished(child: Child, phase: str = "Succeeded", after: float = 60) -> Child:
    return replace(child, phase=phase, completion_time=child.created + timedelta(seconds=after))


def simulate(schedule: Schedule, start: str, end: str) -> list[str]:
    """Scheduled times (UTC) started between `start` and `end` by a schedule created at `start`;
    each run ends at once."""
    schedule = replace(schedule, created=at(start))
    now, status, children, started = at(start), dict(SEEN), list[Child](), []
    while now <= at(end):
        decision = decide(schedule, status, children, now)
        status = decision.status
        for run in decision.start:
            assert run.scheduled_at is not None
            started.append(format_time(run.scheduled_at))
            children.append(finished(Child(run.name, now), after=1))
        gone = {d.name for d in decision.delete}
        children = [c for c in children if c.name not in gone]
        if decision.wake_at is None:
            break
        assert decision.wake_at > now, "the next wake-up must be in the future"
        now = decision.wake_at
    return started


def reasons(decision: Decision) -> list[str]:
    return [e.reason for e in decision.events]


def condition(decision: Decision, type_: str) -> dict[str, Any]:
    return next(c for c in decision.status["conditions"] if c["type"] == type_)


# Cron, macros, time zones.


@pytest.mark.parametrize(("macro", "expression"), sorted(MACROS.items()))
def test_macros_are_their_cron_lines(macro: str, expression: str) -> None:
    assert Cron.parse(macro, None).expression == expression


def test_macros_run_when_cron_says() -> None:
    assert simulate(make("@hourly"), "2026-05-01T10:30:00Z", "2026-05-01T13:00:00Z") == [
        "2026-05-01T11:00:00Z",
        "2026-05-01T12:00:00Z",
        "2026-05-01T13:00:00Z",
    ]
    # 2026-05-06 is a Wednesday; @weekly is Sunday midnight.
    assert simulate(make("@weekly"), "2026-05-06T00:00:00Z", "2026-05-20T00:00:00Z") == [
        "2026-05-10T00:00:00Z",
        "2026-05-17T00:00:00Z",
    ]
    assert simulate(make("@monthly"), "2026-05-06T00:00:00Z", "2026-07-01T00:00:00Z") == [
        "2026-06-01T00:00:00Z",
        "2026-07-01T00:00:00Z",
    ]
    for yearly in ("@yearly", "@annually"):
        assert simulate(make(yearly), "2026-05-06T00:00:00Z", "2028-05-06T00:00:00Z") == [
            "2027-01-01T00:00:00Z",
            "2028-01-01T00:00:00Z",
        ]
    assert simulate(
        make("@daily", timeZone="Europe/Berlin"), "2026-05-06T00:00:00Z", "2026-05-07T00:00:00Z"
    ) == ["2026-05-06T22:00:00Z"]


def test_kubernetes_dialect_question_mark_and_names() -> None:
    cron = Cron.parse("0 6 ? JAN-mar mon,FRI", None)
    assert cron.expression == "0 6 * JAN-mar mon,FRI"
    assert cron.next(at("2026-01-01T00:00:00Z")) == at("2026-01-02T06:00:00Z")  # a Friday


def test_default_time_zone_is_utc() -> None:
    assert simulate(make("30 2 * * *"), "2026-03-29T00:00:00Z", "2026-03-29T12:00:00Z") == [
        "2026-03-29T02:30:00Z"
    ]


# Daylight saving. 2026: Europe/Berlin springs forward on March 29 (02:00 CET -> 03:00 CEST,
# 01:00 UTC) and falls back on October 25 (03:00 CEST -> 02:00 CET, 01:00 UTC);
# America/New_York springs forward on March 8 (02:00 EST -> 03:00 EDT, 07:00 UTC) and falls
# back on November 1 (02:00 EDT -> 01:00 EST, 06:00 UTC).


def test_berlin_spring_gap_runs_once_at_the_end_of_the_gap() -> None:
    schedule = make("30 2 * * *", timeZone="Europe/Berlin")
    assert simulate(schedule, "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z") == [
        "2026-03-28T01:30:00Z",  # 02:30 CET
        "2026-03-29T01:00:00Z",  # 02:30 does not exist: 03:00 CEST, the end of the gap
        "2026-03-30T00:30:00Z",  # 02:30 CEST
    ]


def test_berlin_autumn_repeat_runs_once() -> None:
    schedule = make("30 2 * * *", timeZone="Europe/Berlin")
    assert simulate(schedule, "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z") == [
        "2026-10-24T00:30:00Z",  # 02:30 CEST
        "2026-10-25T00:30:00Z",  # the first 02:30 (CEST); the second (CET, 01:30Z) does not run
        "2026-10-26T01:30:00Z",  # 02:30 CET
    ]


def test_berlin_hourly_follows_real_time_through_both_changes() -> None:
    schedule = make("0 * * * *", timeZone="Europe/Berlin")
    # Spring: 01:00 CET then 03:00 CEST, one real hour apart; no run at the missing 02:00.
    assert simulate(schedule, "2026-03-28T23:30:00Z", "2026-03-29T02:00:00Z") == [
        "2026-03-29T00:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-03-29T02:00:00Z",
    ]
    # Autumn: 02:00 CEST and 02:00 CET both run, an hour apart.
    assert simulate(schedule, "2026-10-24T23:30:00Z", "2026-10-25T02:00:00Z") == [
        "2026-10-25T00:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-10-25T02:00:00Z",
    ]


def test_new_york_spring_gap() -> None:
    schedule = make("30 2 * * *", timeZone="America/New_York")
    assert simulate(schedule, "2026-03-07T00:00:00Z", "2026-03-09T12:00:00Z") == [
        "2026-03-07T07:30:00Z",  # 02:30 EST
        "2026-03-08T07:00:00Z",  # 03:00 EDT, the end of the gap
        "2026-03-09T06:30:00Z",  # 02:30 EDT
    ]


def test_new_york_autumn_repeat() -> None:
    schedule = make("30 1 * * *", timeZone="America/New_York")
    assert simulate(schedule, "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z") == [
        "2026-10-31T05:30:00Z",  # 01:30 EDT
        "2026-11-01T05:30:00Z",  # the first 01:30 (EDT) only
        "2026-11-02T06:30:00Z",  # 01:30 EST
    ]


def test_created_inside_a_repeated_hour_does_not_run_the_past_occurrence() -> None:
    # Created at 02:10 CET, the second pass through 02:xx: 02:30 CEST (00:30Z) is already past.
    schedule = make("30 2 * * *", created="2026-10-25T01:10:00Z", timeZone="Europe/Berlin")
    decision = decide(schedule, dict(SEEN), [], at("2026-10-25T01:40:00Z"))
    assert decision.start == []
    assert decision.status["nextScheduleTime"] == "2026-10-26T01:30:00Z"


def test_unknown_time_zone_is_stalled_never_utc() -> None:
    schedule = make("0 2 * * *", timeZone="Europe/Atlantis")
    decision = decide(schedule, dict(SEEN), [], at("2026-06-01T02:00:30Z"))
    assert decision.start == [] and decision.wake_at is None
    assert "nextScheduleTime" not in decision.status
    stalled = condition(decision, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidTimeZone")
    assert "Europe/Atlantis" in stalled["message"]
    assert condition(decision, "Ready")["status"] == "False"
    assert reasons(decision) == ["InvalidTimeZone"]


def test_a_schedule_cronsim_cannot_use_is_stalled() -> None:
    # Passes the API server's per-field checks, but February never has a 31st.
    decision = decide(make("0 0 31 2 *"), dict(SEEN), [], at("2026-06-01T00:00:00Z"))
    assert condition(decision, "Stalled")["reason"] == "InvalidSchedule"
    with pytest.raises(InvalidSpec):
        Cron.parse("5-1 * * * *", None)


# Starting, missing and catching up.


def test_first_run_is_the_first_time_after_creation() -> None:
    schedule = make("* * * * *", created="2026-11-28T12:00:30Z")
    first = decide(schedule, {}, [], at("2026-11-28T12:00:30Z"))
    assert first.start == [] and first.wake_at == at("2026-11-28T12:01:00Z")
    assert first.status["nextScheduleTime"] == "2026-11-28T12:01:00Z"
    assert condition(first, "Ready")["reason"] == "Scheduled"
    due = decide(schedule, first.status, [], at("2026-11-28T12:01:00.1Z"))
    (run,) = due.start
    assert run.name == f"nightly-{int(at('2026-11-28T12:01:00Z').timestamp()) // 60}"
    assert due.status["lastScheduleTime"] == "2026-11-28T12:01:00Z"
    assert (due.status["active"], due.status["activeExports"]) == (1, [run.name])
    assert due.status["nextScheduleTime"] == "2026-11-28T12:02:00Z"
    # Conditions keep their transition time while nothing flips.
    assert condition(due, "Ready")["lastTransitionTime"] == "2026-11-28T12:00:30Z"


def test_missed_times_without_a_deadline_start_only_the_most_recent() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T10:00:00Z"}
    decision = decide(make("0 * * * *"), status, [], at("2026-06-01T15:20:00Z"))
    assert [r.scheduled_at for r in decision.start] == [at("2026-06-01T15:00:00Z")]
    assert reasons(decision) == []
    assert decision.wake_at == at("2026-06-01T16:00:00Z")


def test_missed_times_beyond_the_deadline_are_skipped_with_a_warning() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T10:00:00Z"}
    schedule = make("0 * * * *", startingDeadlineSeconds=600)
    late = decide(schedule, status, [], at("2026-06-01T15:20:00Z"))
    assert late.start == []
    assert reasons(late) == ["MissSchedule"]
    assert "2026-06-01T15:00:00Z" in late.events[0].message
    assert late.status["lastScheduleTime"] == "2026-06-01T10:00:00Z"
    assert late.wake_at == at("2026-06-01T16:00:00Z")
    # Recorded: the same miss decided again (the next pass, a restart) is not reported again.
    assert (late.status["lastMissedTime"], late.missed) == ("2026-06-01T15:00:00Z", 1)
    again = decide(schedule, late.status, [], at("2026-06-01T15:30:00Z"))
    assert (reasons(again), again.missed) == ([], 0)
    in_time = decide(schedule, status, [], at("2026-06-01T15:05:00Z"))
    assert [r.scheduled_at for r in in_time.start] == [at("2026-06-01T15:00:00Z")]
    assert reasons(in_time) == ["MissSchedule"]  # 14:00 and earlier are lost, and said so
    zero = decide(
        make("0 * * * *", startingDeadlineSeconds=0), status, [], at("2026-06-01T15:00:00Z")
    )
    assert [r.scheduled_at for r in zero.start] == [at("2026-06-01T15:00:00Z")]


def test_more_than_100_missed_starts_the_most_recent_and_warns() -> None:
    schedule = make("* * * * *", created="2020-01-01T00:00:00Z")
    began = time.monotonic()
    decision = decide(schedule, dict(SEEN), [], at("2026-11-28T12:00:30Z"))
    assert time.monotonic() - began < 1.0, "never walks through millions of missed minutes"
    assert [r.scheduled_at for r in decision.start] == [at("2026-11-28T12:00:00Z")]
    assert reasons(decision) == ["TooManyMissedTimes"]
    assert decision.missed == 1  # counted with the start that moves past them
    # 100 missed is not "too many".
    hundred = decide(
        make("* * * * *", created="2026-11-28T10:20:00Z"),
        dict(SEEN),
        [],
        at("2026-11-28T12:00:00Z"),
    )
    assert reasons(hundred) == [] and len(hundred.start) == 1
    many = decide(
        make("* * * * *", created="2026-11-28T10:19:00Z"),
        dict(SEEN),
        [],
        at("2026-11-28T12:00:00Z"),
    )
    assert reasons(many) == ["TooManyMissedTimes"]
    # Sparse and irregular schedules find their most recent time too.
    weekdays = decide(
        make("30 6-16/4 * * 1-5", created="2020-01-01T00:00:00Z"),
        dict(SEEN),
        [],
        at("2026-11-29T12:00:00Z"),
    )  # a Sunday
    assert [r.scheduled_at for r in weekdays.start] == [at("2026-11-27T14:30:00Z")]


def test_suspend_and_resume() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T10:00:00Z"}
    suspended = decide(make("0 * * * *", suspend=True), status, [], at("2026-06-01T13:30:00Z"))
    assert suspended.start == [] and suspended.wake_at is None
    assert "nextScheduleTime" not in suspended.status
    assert condition(suspended, "Ready")["reason"] == "Suspended"
    assert condition(suspended, "Ready")["status"] == "True"
    # Resumed: the most recent missed time starts at once, as a resumed CronJob's does...
    resumed = decide(make("0 * * * *"), suspended.status, [], at("2026-06-01T13:30:00Z"))
    assert [r.scheduled_at for r in resumed.start] == [at("2026-06-01T13:00:00Z")]
    # ... unless the deadline has passed.
    strict = make("0 * * * *", startingDeadlineSeconds=300)
    assert decide(strict, suspended.status, [], at("2026-06-01T13:30:00Z")).start == []


# Concurrency policies.


def test_forbid_skips_while_a_run_is_active_then_starts_it_late() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T12:00:00Z", "activeExports": ["nightly-x"]}
    running = run_at("2026-06-01T12:00:00Z")
    skipped = decide(make("0 * * * *"), status, [running], at("2026-06-01T13:00:00Z"))
    assert skipped.start == [] and skipped.delete == []
    assert reasons(skipped) == ["ExportAlreadyActive"]
    assert running.name in skipped.events[0].message
    assert skipped.status["lastScheduleTime"] == "2026-06-01T12:00:00Z"
    assert skipped.status["active"] == 1
    assert skipped.wake_at == at("2026-06-01T14:00:00Z")
    # The active run finishes at 13:20: the skipped 13:00 starts then, late.
    done = finished(running, after=80 * 60)
    late = decide(make("0 * * * *"), skipped.status, [done], at("2026-06-01T13:20:00Z"))
    assert [r.scheduled_at for r in late.start] == [at("2026-06-01T13:00:00Z")]
    # With a 10-minute deadline it is skipped for good.
    strict = make("0 * * * *", startingDeadlineSeconds=600)
    assert decide(strict, skipped.status, [done], at("2026-06-01T13:20:00Z")).start == []


def test_allow_runs_concurrently() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T12:00:00Z"}
    running = run_at("2026-06-01T12:00:00Z")
    decision = decide(
        make("0 * * * *", concurrencyPolicy="Allow"), status, [running], at("2026-06-01T13:00:00Z")
    )
    (run,) = decision.start
    assert decision.delete == []
    assert decision.status["activeExports"] == sorted([running.name, run.name])
    assert decision.status["active"] == 2


def test_replace_deletes_the_active_run_then_starts() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T12:00:00Z"}
    running = run_at("2026-06-01T12:00:00Z")
    decision = decide(
        make("0 * * * *", concurrencyPolicy="Replace"),
        status,
        [running],
        at("2026-06-01T13:00:00Z"),
    )
    (run,) = decision.start
    assert [d.name for d in decision.delete] == [running.name]
    assert run.name in decision.delete[0].why
    assert decision.status["activeExports"] == [run.name]


def test_children_being_deleted_are_not_active_but_keep_their_names() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T12:00:00Z"}
    going = replace(run_at("2026-06-01T12:00:00Z"), deleting=True)
    decision = decide(make("0 * * * *"), status, [going], at("2026-06-01T13:00:00Z"))
    assert len(decision.start) == 1 and decision.status["active"] == 1


def test_a_run_created_before_a_restart_is_recorded_not_started_again() -> None:
    status = {**SEEN, "lastScheduleTime": "2026-06-01T12:00:00Z"}
    created = run_at("2026-06-01T13:00:00Z")  # status not yet written when the operator died
    decision = decide(make("0 * * * *"), status, [created], at("2026-06-01T13:00:05Z"))
    assert decision.start == []
    assert decision.status["lastScheduleTime"] == "2026-06-01T13:00:00Z"
    assert decision.status["activeExports"] == [created.name]


# History and finished runs.


def test_history_limits_delete_the_oldest_finished_runs_only() -> None:
    hours = [f"2026-06-01T{h:02}:00:00Z" for h in range(10)]
    succeeded = [finished(run_at(h)) for h in hours[:5]]
    failed = [finished(run_at(h), "Failed") for h in hours[5:8]]
    active = [run_at(h) for h in hours[8:]]
    status = {**SEEN, "lastScheduleTime": hours[-1]}
    decision = decide(
        make("0 * * * *", concurrencyPolicy="Allow"),
        status,
        [*succeeded, *failed, *active],
        at("2026-06-01T09:30:00Z"),
    )
    deleted = [d.name for d in decision.delete]
    assert deleted == [c.name for c in succeeded[:2] + failed[:2]]
    assert "successfulExportsHistoryLimit=3" in decision.delete[0].why
    assert decision.status["lastSuccessfulTime"] == "2026-06-01T04:01:00Z"  # the newest success
    assert decision.status["active"] == 2
    none_kept = make("0 * * * *", successfulExportsHistoryLimit=0, failedExportsHistoryLimit=0)
    all_finished = decide(none_kept, status, [*succeeded, *failed], at("2026-06-01T09:30:00Z"))
    assert len(all_finished.delete) == 8
    # lastSuccessfulTime never goes back once the runs are gone.
    later = decide(none_kept, all_finished.status, [], at("2026-06-01T09:31:00Z"))
    assert later.status["lastSuccessfulTime"] == decision.status["lastSuccessfulTime"]


def test_a_finished_run_is_reported_once() -> None:
    running = run_at("2026-06-01T12:00:00Z")
    status = {
        **SEEN,
        "lastScheduleTime": "2026-06-01T12:00:00Z",
        "activeExports": [running.name],
        "active": 1,
    }
    decision = decide(make("0 * * * *"), status, [finished(running)], at("2026-06-01T12:10:00Z"))
    assert reasons(decision) == ["SawCompletedExport"]
    assert "activeExports" not in decision.status and decision.status["active"] == 0
    again = decide(
        make("0 * * * *"), decision.status, [finished(running)], at("2026-06-01T12:11:00Z")
    )
    assert reasons(again) == []
    assert again.status == decision.status  # nothing to patch


# The trigger annotation.


def quiet(trigger: str | None = None, **spec: Any) -> Schedule:
    """A schedule with no scheduled time near the tests' clock: only triggers start runs."""
    return make("@yearly", created="2026-06-01T00:00:00Z", trigger=trigger, **spec)


def test_trigger_value_present_at_creation_is_the_baseline() -> None:
    decision = decide(quiet("v1"), {}, [], at("2026-06-01T12:00:00Z"))
    assert decision.start == []
    assert decision.status["lastTriggerValue"] == "v1"


def test_a_new_trigger_value_starts_one_run_now() -> None:
    now = at("2026-06-01T12:34:56Z")
    status = {**SEEN, "lastTriggerValue": "v1"}
    decision = decide(quiet("v2"), status, [], now)
    (run,) = decision.start
    assert run == replace(
        run, name=api.schedule_run_name("nightly", now), scheduled_at=None, trigger="v2"
    )
    assert decision.status["lastTriggerValue"] == "v2"
    assert "lastScheduleTime" not in decision.status  # a trigger is not a scheduled time
    manifest = export_manifest(quiet("v2"), run)
    assert manifest["metadata"]["annotations"][api.ANNOTATION_TRIGGERED_BY] == "v2"
    # The same value again (or none) starts nothing.
    assert decide(quiet("v2"), decision.status, [], now).start == []
    assert decide(quiet(), decision.status, [], now).start == []


def test_trigger_ignores_forbid_and_suspend() -> None:
    status = {**SEEN, "lastTriggerValue": "v1", "lastScheduleTime": "2026-06-01T12:00:00Z"}
    running = run_at("2026-06-01T12:00:00Z")
    decision = decide(
        make("0 * * * *", trigger="v2", suspend=True), status, [running], at("2026-06-01T12:30:00Z")
    )
    assert len(decision.start) == 1 and decision.delete == []
    assert decision.status["active"] == 2


def test_trigger_started_before_a_restart_is_not_started_again() -> None:
    now = at("2026-06-01T12:35:10Z")
    status = {**SEEN, "lastTriggerValue": "v1"}
    started = Child(
        api.schedule_run_name("nightly", at("2026-06-01T12:34:56Z")),
        at("2026-06-01T12:34:56Z"),
        "Pending",
        triggered_by="v2",
    )
    decision = decide(quiet("v2"), status, [started], now)
    assert decision.start == []
    assert decision.status["lastTriggerValue"] == "v2"


def test_trigger_value_reused_later_starts_again() -> None:
    old_a = finished(Child("nightly-1", at("2026-06-01T10:00:00Z"), triggered_by="a"))
    newer_b = finished(Child("nightly-2", at("2026-06-01T11:00:00Z"), triggered_by="b"))
    status = {**SEEN, "lastTriggerValue": "b"}
    decision = decide(quiet("a"), status, [old_a, newer_b], at("2026-06-01T12:00:00Z"))
    assert len(decision.start) == 1


def test_trigger_and_scheduled_time_in_the_same_minute_share_one_run() -> None:
    schedule = make("* * * * *", created="2026-06-01T11:00:00Z", trigger="v2")
    status = {**SEEN, "lastTriggerValue": "v1", "lastScheduleTime": "2026-06-01T11:59:00Z"}
    decision = decide(schedule, status, [], at("2026-06-01T12:00:00.1Z"))
    (run,) = decision.start
    assert run.name == api.schedule_run_name("nightly", at("2026-06-01T12:00:00Z"))
    assert run.trigger == "v2"
    assert decision.status["lastTriggerValue"] == "v2"
    assert decision.status["lastScheduleTime"] == "2026-06-01T12:00:00Z"


def test_trigger_after_this_minutes_run_starts_the_next_minute() -> None:
    schedule = make(
        "* * * * *", created="2026-06-01T11:00:00Z", trigger="v2", concurrencyPolicy="Allow"
    )
    status = {**SEEN, "lastTriggerValue": "v1", "lastScheduleTime": "2026-06-01T12:00:00Z"}
    this_minute = run_at("2026-06-01T12:00:00Z")
    waiting = decide(schedule, status, [this_minute], at("2026-06-01T12:00:30Z"))
    assert waiting.start == [] and waiting.wake_at == at("2026-06-01T12:01:00Z")
    assert waiting.status["lastTriggerValue"] == "v1"
    then = decide(schedule, waiting.status, [this_minute], at("2026-06-01T12:01:00.1Z"))
    (run,) = then.start
    assert run.trigger == "v2"
    assert run.name == api.schedule_run_name("nightly", at("2026-06-01T12:01:00Z"))
    assert then.status["lastScheduleTime"] == "2026-06-01T12:01:00Z"


# The export a run creates.


def test_export_manifest_is_the_template_owned_and_labelled() -> None:
    schedule = make()
    run = decide(
        schedule,
        {**SEEN, "lastScheduleTime": "2026-06-01T02:00:00Z"},
        [],
        at("2026-06-02T02:00:01Z"),
    ).start[0]
    manifest = export_manifest(schedule, run)
    meta = manifest["metadata"]
    assert (manifest["apiVersion"], manifest["kind"]) == (
        "pinpoint.exports.dev/v1alpha1",
        "PinpointExport",
    )
    assert meta["name"] == run.name and meta["namespace"] == "ns"
    assert meta["labels"] == {"team": "marketing", api.LABEL_SCHEDULE: "nightly"}
    assert meta["annotations"] == {
        "note": "nightly",
        api.ANNOTATION_SCHEDULED_AT: "2026-06-02T02:00:00Z",
    }
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "pinpoint.exports.dev/v1alpha1",
        "kind": "PinpointExportSchedule",
        "name": "nightly",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert manifest["spec"] == TEMPLATE["spec"] and manifest["spec"] is not TEMPLATE["spec"]


def test_objects_from_the_api() -> None:
    schedule = Schedule.from_object(
        {
            "metadata": {
                "namespace": "ns",
                "name": "nightly",
                "uid": "u",
                "generation": 4,
                "creationTimestamp": "2026-06-01T00:00:00Z",
                "annotations": {api.ANNOTATION_TRIGGER: "now"},
            },
            "spec": {"schedule": "@daily", "exportTemplate": TEMPLATE},
        }
    )
    assert (schedule.generation, schedule.trigger) == (4, "now")
    child = Child.from_object(
        {
            "metadata": {
                "name": "nightly-1",
                "creationTimestamp": "2026-06-01T00:00:00Z",
                "deletionTimestamp": "2026-06-01T00:05:00Z",
                "annotations": {api.ANNOTATION_TRIGGERED_BY: "now"},
            },
            "status": {"phase": "Succeeded", "completionTime": "2026-06-01T00:04:00Z"},
        }
    )
    assert child.finished and child.deleting and child.triggered_by == "now"
    assert child.completion_time == at("2026-06-01T00:04:00Z")
    assert not Child.from_object(
        {"metadata": {"name": "n", "creationTimestamp": "2026-06-01T00:00:00Z"}}
    ).finished


def test_run_names_are_unix_minutes() -> None:
    assert api.schedule_run_name("nightly", at("1970-01-01T00:01:59Z")) == "nightly-1"
    assert api.schedule_run_name("nightly", at("2026-11-28T12:01:00Z")) == "nightly-29931121"


def ready(decision: Decision) -> dict[str, Any]:
    return next(c for c in decision.status["conditions"] if c["type"] == "Ready")


def test_a_schedule_whose_last_run_failed_says_so_until_a_run_succeeds() -> None:
    good = finished(run_at("2026-06-01T02:00:00Z"))
    bad = replace(
        finished(run_at("2026-06-02T02:00:00Z"), "Failed"),
        message="Pinpoint export job j1 ended FAILED: AccessDenied",
    )
    failing = decide(make(), dict(SEEN), [good, bad], at("2026-06-02T09:30:00Z"))
    assert failing.status["lastFailedTime"] == "2026-06-02T02:01:00Z"
    assert failing.status["lastFailure"].startswith(f"{bad.name}: Pinpoint export job j1")
    stalled = next(c for c in failing.status["conditions"] if c["type"] == "Stalled")
    assert (ready(failing)["status"], stalled["status"]) == ("False", "True")
    assert ready(failing)["reason"] == "LastRunFailed"
    assert "AccessDenied" in ready(failing)["message"]
    # The failed run pruned by the history limit: the schedule still says it failed.
    pruned = decide(make(), failing.status, [good], at("2026-06-02T09:31:00Z"))
    assert ready(pruned)["reason"] == "LastRunFailed"
    # A later success clears it.
    fixed = finished(run_at("2026-06-03T02:00:00Z"))
    healthy = decide(make(), pruned.status, [good, fixed], at("2026-06-03T09:30:00Z"))
    assert (ready(healthy)["status"], ready(healthy)["reason"]) == ("True", "Scheduled")
    assert healthy.status["lastFailedTime"] == failing.status["lastFailedTime"]
