"""Every transition of a PinpointExport, decided without a cluster."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pinpoint_export_operator.exports import state
from pinpoint_export_operator.exports.claims import CLAIM_SECONDS
from pinpoint_export_operator.exports.steps import (
    Caller,
    ClaimHeld,
    CopyJob,
    CopyJobMissing,
    EnsureCopyJob,
    EnsureExportJob,
    Export,
    ExportJob,
    ObserveCopyJob,
    PollExportJob,
    WaitForClaim,
)
from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_operator.runtime.errors import CloudError

T0 = "2026-11-28T10:00:00Z"
STARTER = Caller("operator-a", T0, nothing_created=True)
T1 = "2026-11-28T10:00:15Z"
LATER = Caller("operator-a", T1)


def make_export(**spec: Any) -> Export:
    return Export(
        namespace="marketing",
        name="nightly",
        uid="1a2b3c4d-0000-0000-0000-000000000000",
        creation_timestamp=T0,
        generation=1,
        spec={
            "applicationId": "0" * 32,
            "roleArn": "arn:aws:iam::123456789012:role/export",
            "s3UrlPrefix": "s3://bucket/exports/",
            "destination": {"claimName": "exports", "path": "pinpoint"},
            **spec,
        },
    )


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def pending() -> dict[str, Any]:
    return state.start(make_export(), {}, STARTER).status


def exporting(job_status: str = "PROCESSING") -> dict[str, Any]:
    return state.advance(make_export(), pending(), ExportJob("job1", job_status), T1).status


def test_start_records_run_id_and_prefix_before_anything_is_created() -> None:
    outcome = state.start(make_export(), {}, STARTER)
    assert outcome.status["phase"] == "Pending"
    assert outcome.status["runId"] == "20261128T100000Z-1a2b3c4d"
    assert outcome.status["exportJob"]["s3Url"] == (
        "s3://bucket/exports/marketing/nightly/20261128T100000Z-1a2b3c4d/"
    )
    assert outcome.again
    assert outcome.events == []  # ExportJobCreated tells the story once Pinpoint answered
    assert outcome.status["exportJob"]["requestedBy"] == "operator-a"
    assert condition(outcome.status, "Reconciling")["status"] == "True"
    assert condition(outcome.status, "Ready")["status"] == "False"
    # The process that started the run knows no create was sent yet: no search.
    just_started = Caller("operator-a", T0, nothing_created=True)
    assert state.next_action(outcome.status, just_started) == EnsureExportJob(
        outcome.status["exportJob"]["s3Url"], search=False
    )


@pytest.mark.parametrize(
    ("adopted", "reason"), [(False, "ExportJobCreated"), (True, "ExportJobAdopted")]
)
def test_created_or_adopted_job_moves_to_exporting(adopted: bool, reason: str) -> None:
    job = ExportJob("job1", "CREATED", adopted=adopted)
    outcome = state.advance(make_export(), pending(), job, T1)
    assert outcome.status["phase"] == "Exporting"
    assert outcome.status["exportJob"]["id"] == "job1"
    assert [e.reason for e in outcome.events] == [reason]
    assert state.next_action(outcome.status, LATER) == PollExportJob("job1")


@pytest.mark.parametrize(
    "job_status",
    ["CREATED", "PREPARING_FOR_INITIALIZATION", "INITIALIZING", "PROCESSING", "COMPLETING"],
)
def test_running_statuses_keep_polling(job_status: str) -> None:
    job = ExportJob("job1", job_status, completed_pieces=1, total_pieces=3, total_processed=40)
    outcome = state.advance(make_export(), exporting(), job, T1)
    assert outcome.status["phase"] == "Exporting"
    assert outcome.status["progress"] == "1/3"
    assert outcome.status["exportJob"]["jobStatus"] == job_status
    assert not outcome.again and not outcome.retry
    assert state.next_action(outcome.status, LATER) == PollExportJob("job1")


def test_same_observation_twice_changes_nothing() -> None:
    job = ExportJob("job1", "PROCESSING", completed_pieces=1, total_pieces=3)
    first = state.advance(make_export(), exporting(), job, T1)
    second = state.advance(make_export(), first.status, job, "2026-11-28T10:00:30Z")
    assert second.status == first.status
    assert second.events == []


def test_completed_job_leads_to_the_copy_job_at_once() -> None:
    job = ExportJob("job1", "COMPLETED", completed_pieces=3, total_pieces=3, total_processed=100)
    outcome = state.advance(make_export(), exporting(), job, T1)
    assert outcome.again
    assert outcome.events == []  # told by the copy Job's Event, one write later
    assert state.next_action(outcome.status, LATER) == EnsureCopyJob(exported_endpoints=100)
    copying = state.advance(
        make_export(), outcome.status, CopyJob("nightly-copy", created=True), T1
    )
    assert copying.status["phase"] == "Copying"
    assert copying.status["copyJob"]["name"] == "nightly-copy"
    assert [e.reason for e in copying.events] == ["CopyJobCreated"]
    assert "exported 100 endpoints in 3 pieces" in copying.events[0].message
    assert state.next_action(copying.status, LATER) == ObserveCopyJob("nightly-copy")


def test_failed_job_is_terminal_with_pinpoint_failures_in_the_message() -> None:
    job = ExportJob("job1", "FAILED", failures=("Bucket does not exist",))
    outcome = state.advance(make_export(), exporting(), job, T1)
    status = outcome.status
    assert status["phase"] == "Failed"
    assert "Bucket does not exist" in status["message"]
    assert condition(status, "Stalled") | {"lastTransitionTime": None} == {
        "type": "Stalled",
        "status": "True",
        "reason": "PinpointJobFailed",
        "message": status["message"],
        "observedGeneration": 1,
        "lastTransitionTime": None,
    }
    assert condition(status, "Reconciling")["status"] == "False"
    assert [e.type for e in outcome.events] == ["Warning"]
    assert state.next_action(status, LATER) is None
    assert not state.is_active(status)


def test_failing_job_is_reported_but_polled_until_failed() -> None:
    outcome = state.advance(make_export(), exporting(), ExportJob("job1", "FAILING"), T1)
    assert outcome.status["phase"] == "Exporting"
    assert state.next_action(outcome.status, LATER) == PollExportJob("job1")


def test_transient_error_retries_and_warns_once() -> None:
    error = CloudError("Throttled", "GetExportJob: TooManyRequestsException: slow down", True)
    first = state.advance(make_export(), exporting(), error, T1)
    assert first.retry
    assert first.status["phase"] == "Exporting"
    assert condition(first.status, "Reconciling")["reason"] == "Throttled"
    assert [e.reason for e in first.events] == ["Throttled"]
    again = state.advance(make_export(), first.status, error, T1)
    assert again.events == []


def test_terminal_error_fails() -> None:
    error = CloudError("NotFound", "CreateExportJob: NotFoundException: no app", False)
    outcome = state.advance(make_export(), pending(), error, T1)
    assert outcome.status["phase"] == "Failed"
    assert condition(outcome.status, "Stalled")["reason"] == "NotFound"


def test_export_timeout() -> None:
    export = make_export(exportTimeoutSeconds=60)
    status = exporting()
    assert state.timed_out(export, status, "2026-11-28T10:00:59Z") is None
    outcome = state.timed_out(export, status, "2026-11-28T10:01:01Z")
    assert outcome is not None
    assert outcome.status["phase"] == "Failed"
    assert condition(outcome.status, "Stalled")["reason"] == "ExportTimedOut"


def copying() -> dict[str, Any]:
    done = state.advance(
        make_export(), exporting(), ExportJob("job1", "COMPLETED", total_processed=7), T1
    )
    return state.advance(
        make_export(), done.status, CopyJob("nightly-copy", created=True), T1
    ).status


def test_copy_success_fills_output_and_ready() -> None:
    summary = {"files": 3, "bytes": 1234, "seconds": 0.5}
    job = CopyJob("nightly-copy", succeeded=1, finished="Complete", summary=summary)
    outcome = state.advance(make_export(), copying(), job, T1)
    status = outcome.status
    assert status["phase"] == "Succeeded"
    assert status["output"] == {
        "claimName": "exports",
        "path": "pinpoint/20261128T100000Z-1a2b3c4d",
        "files": 3,
        "bytes": 1234,
        "manifest": "pinpoint/20261128T100000Z-1a2b3c4d/manifest.json",
    }
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Reconciling")["status"] == "False"
    assert [e.reason for e in outcome.events] == ["Succeeded"]


@pytest.mark.parametrize(
    ("lines", "reason", "events"),
    [
        (7, "Succeeded", ["Succeeded"]),
        (None, "Succeeded", ["Succeeded"]),  # a copier that does not count lines
        (6, "EndpointCountMismatch", ["EndpointCountMismatch", "Succeeded"]),
    ],
)
def test_the_copied_lines_are_compared_with_the_exported_endpoints(
    lines: int | None, reason: str, events: list[str]
) -> None:
    summary = {"files": 1, "bytes": 10, "lines": lines}
    job = CopyJob("nightly-copy", succeeded=1, finished="Complete", summary=summary)
    outcome = state.advance(make_export(), copying(), job, T1)  # Pinpoint: 7 endpoints
    status = outcome.status
    assert status["phase"] == "Succeeded"
    assert status["output"].get("lines") == lines
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", reason)
    assert [e.reason for e in outcome.events] == events
    if lines == 6:
        assert "hold 6 lines, but Pinpoint reported 7 endpoints" in status["message"]
        assert outcome.events[0].type == "Warning"
        assert "6 lines" in outcome.events[0].message


def test_copy_failure_is_terminal() -> None:
    job = CopyJob(
        "nightly-copy", failed=1, finished="Failed", failure_message="BackoffLimitExceeded"
    )
    outcome = state.advance(make_export(), copying(), job, T1)
    assert outcome.status["phase"] == "Failed"
    assert condition(outcome.status, "Stalled")["reason"] == "CopyFailed"
    assert "BackoffLimitExceeded" in outcome.status["message"]


def test_copy_job_running_updates_counts_only() -> None:
    outcome = state.advance(make_export(), copying(), CopyJob("nightly-copy", active=1), T1)
    assert outcome.status["phase"] == "Copying"
    assert outcome.status["copyJob"]["active"] == 1
    assert outcome.events == []


def test_missing_copy_job_is_created_again_and_says_so() -> None:
    """Its finalizer keeps a Job until its result is read: missing, it was deleted before it
    finished or the finalizer was removed by hand. Made again, as before the finalizer."""
    outcome = state.advance(make_export(), copying(), CopyJobMissing("nightly-copy"), T1)
    assert outcome.again
    assert "finalizer pinpoint.exports.dev/copy-result removed by hand" in outcome.status["message"]
    assert state.next_action(outcome.status, LATER) == EnsureCopyJob(exported_endpoints=7)
    again = state.advance(make_export(), outcome.status, CopyJob("nightly-copy", created=True), T1)
    (created,) = again.events
    assert created.reason == "CopyJobCreated"
    assert "created copy Job nightly-copy again: the previous one was gone" in created.message


DELETING = {"deleting": True, "finalizer": True}


@pytest.mark.parametrize(("finished", "phase"), [("Complete", "Succeeded"), ("Failed", "Failed")])
def test_a_finished_copy_job_being_deleted_ends_the_export_and_is_let_go(
    finished: Any, phase: str
) -> None:
    """Deleted by its TTL (foreground: its pods go first) before its result was read: the Job's
    condition decides, the copier's words are missing, and the Job is never made again."""
    job = CopyJob("nightly-copy", finished=finished, pods_gone=True, **DELETING)  # type: ignore[arg-type]
    outcome = state.advance(make_export(), copying(), job, T1)
    status = outcome.status
    assert status["phase"] == phase
    assert outcome.release == "nightly-copy"  # once this status is written
    assert state.next_action(status, LATER) is None  # never created again
    if phase == "Succeeded":
        assert "files" not in status["output"] and "bytes" not in status["output"]
        assert "the copier's summary (files, bytes) was lost with its pods" in status["message"]
        assert condition(status, "Ready")["status"] == "True"
    else:
        assert "no pod of it is left to tell what the copier said" in status["message"]


def test_a_copy_job_is_let_go_of_only_while_being_deleted() -> None:
    complete = CopyJob("nightly-copy", finished="Complete", summary={"files": 1, "bytes": 2})
    assert state.advance(make_export(), copying(), complete, T1).release is None
    # Deleted before it finished: nothing to read, gone once let go of, then made again.
    running = CopyJob("nightly-copy", active=1, **DELETING)  # type: ignore[arg-type]
    outcome = state.advance(make_export(), copying(), running, T1)
    assert (outcome.status["phase"], outcome.release) == ("Copying", "nightly-copy")


@pytest.mark.parametrize(
    ("job", "export", "released"),
    [
        (CopyJob("c", finished="Complete", **DELETING), None, True),  # export gone or deleting
        (CopyJob("c", active=1, **DELETING), {"phase": "Copying"}, True),  # no result
        (CopyJob("c", finished="Complete", **DELETING), {"phase": "Copying"}, False),
        (
            CopyJob("c", finished="Complete", **DELETING),
            {"phase": "Succeeded", "copyJob": {"name": "c"}},
            True,
        ),
        (
            CopyJob("c", finished="Failed", **DELETING),
            {"phase": "Failed", "copyJob": {"name": "other"}},
            False,
        ),
        (CopyJob("c", finished="Complete", finalizer=True), None, False),  # not being deleted
        (CopyJob("c", finished="Complete", deleting=True), None, False),  # not ours to remove
    ],
)
def test_when_a_copy_job_being_deleted_is_let_go_of(
    job: CopyJob, export: dict[str, Any] | None, released: bool
) -> None:
    assert state.copy_job_releasable(job, export) is released  # type: ignore[arg-type]


def test_condition_transition_time_moves_only_on_flip() -> None:
    status = exporting()
    before = condition(status, "Reconciling")["lastTransitionTime"]
    later = state.advance(
        make_export(), status, ExportJob("job1", "PROCESSING"), "2026-11-28T11:00:00Z"
    )
    assert condition(later.status, "Reconciling")["lastTransitionTime"] == before


def claimed_by(holder: str, at: str) -> dict[str, Any]:
    status = pending()
    status["exportJob"].update(requestedBy=holder, requestedAt=at)
    return status


def test_a_fresh_claim_of_another_replica_is_waited_out() -> None:
    action = state.next_action(claimed_by("operator-b", T0), LATER)
    assert action == WaitForClaim("operator-b", CLAIM_SECONDS - 15)
    outcome = state.advance(make_export(), pending(), ClaimHeld("operator-b", 45), T1)
    assert outcome.delay == 45 and "operator-b" in outcome.status["message"]


def test_an_expired_claim_of_another_replica_means_search_then_create() -> None:
    expired = timestamps.parse(T0) + timedelta(seconds=CLAIM_SECONDS + 1)
    later = Caller("operator-a", timestamps.format(expired))
    action = state.next_action(claimed_by("operator-b", T0), later)
    assert action == EnsureExportJob(pending()["exportJob"]["s3Url"], search=True)


@pytest.mark.parametrize(("nothing_created", "search"), [(True, False), (False, True)])
def test_own_claim_searches_only_if_a_create_may_have_gone_through(
    nothing_created: bool, search: bool
) -> None:
    caller = Caller("operator-a", T1, nothing_created=nothing_created)
    action = state.next_action(claimed_by("operator-a", T0), caller)
    assert isinstance(action, EnsureExportJob) and action.search is search


def test_a_create_that_got_no_answer_is_waited_out_before_the_search() -> None:
    """Pinpoint may still be making the job: a search now could miss it, and a create would
    make a second. Once it cannot be running any more, the job is searched for."""
    until = timestamps.format(timestamps.parse(T1) + timedelta(seconds=40))
    running = Caller("operator-a", T1, create_running_until=until)
    action = state.next_action(claimed_by("operator-a", T0), running)
    assert action == WaitForClaim("operator-a", 40)
    ended = Caller("operator-a", until, create_running_until=until)
    action = state.next_action(claimed_by("operator-a", T0), ended)
    assert action == EnsureExportJob(pending()["exportJob"]["s3Url"], search=True)


def test_a_run_without_any_claim_is_searched() -> None:
    """Written by an earlier version, which claimed nothing and may have created."""
    status = pending()
    del status["exportJob"]["requestedAt"], status["exportJob"]["requestedBy"]
    action = state.next_action(status, Caller("operator-b", T1, nothing_created=True))
    assert isinstance(action, EnsureExportJob) and action.search is True


def test_completed_with_failed_pieces_is_not_ready() -> None:
    job = ExportJob("job1", "COMPLETED", total_pieces=3, failed_pieces=1, failures=("p2: denied",))
    outcome = state.advance(make_export(), exporting(), job, T1)
    assert outcome.status["phase"] == "Failed"
    assert condition(outcome.status, "Stalled")["reason"] == "PiecesFailed"
    assert "1 of 3 pieces failed" in outcome.status["message"]
    assert "p2: denied" in outcome.status["message"]


def test_a_timeout_says_what_kept_failing() -> None:
    error = CloudError("Throttled", "GetExportJob: TooManyRequestsException: slow down", True)
    retrying = state.advance(make_export(), exporting(), error, T1).status
    outcome = state.timed_out(
        make_export(exportTimeoutSeconds=60), retrying, "2026-11-29T00:00:00Z"
    )
    assert outcome is not None
    assert "did not finish within 60s; last error: GetExportJob" in outcome.status["message"]


def test_messages_are_bounded() -> None:
    error = CloudError("UnexpectedResponse", "x" * 40_000, transient=False)
    outcome = state.advance(make_export(), exporting(), error, T1)
    assert len(outcome.status["message"]) <= 400
    assert outcome.status["message"].endswith("(truncated)")
    assert all(len(e.message) <= 400 for e in outcome.events)


def test_a_waiting_copy_pod_is_reported_once() -> None:
    waiting = CopyJob("nightly-copy", waiting="ImagePullBackOff: back-off pulling image")
    first = state.advance(make_export(), copying(), waiting, T1)
    assert "waiting: ImagePullBackOff" in first.status["message"]
    assert [e.reason for e in first.events] == ["CopyPodWaiting"]
    again = state.advance(make_export(), first.status, waiting, T1)
    assert again.events == [] and again.status == first.status
    unknown = CopyJob("nightly-copy", waiting=None)  # its pods not looked at
    assert state.advance(make_export(), first.status, unknown, T1).status == first.status
    running = state.advance(make_export(), first.status, CopyJob("nightly-copy", active=1), T1)
    assert "waiting" not in running.status["message"]


def copying_with(message: str) -> dict[str, Any]:
    status = copying()
    status["message"] = message
    return status


def test_progress_alone_waits_for_the_next_write_or_a_minute() -> None:
    before = exporting("CREATED")
    after = state.advance(make_export(), before, ExportJob("job1", "PROCESSING"), T1).status
    assert after != before
    assert not state.write_now(before, after, since_written=5)
    assert state.write_now(before, after, since_written=state.PROGRESS_WRITE_SECONDS)
    assert not state.write_now(after, after, since_written=3600)  # nothing changed
    started = copying()
    running = {**started, "copyJob": {**started["copyJob"], "active": 1}}
    assert not state.write_now(started, running, since_written=5)


@pytest.mark.parametrize(
    "change",
    ["phase", "retrying", "recovered", "failing", "pod waiting"],
)
def test_all_but_progress_is_written_at_once(change: str) -> None:
    export = make_export()
    before = exporting("PROCESSING")
    if change == "phase":
        after = copying()
    elif change == "retrying":
        error = CloudError("Throttled", "GetExportJob: slow down", transient=True)
        after = state.advance(export, before, error, T1).status
    elif change == "recovered":
        error = CloudError("Throttled", "GetExportJob: slow down", transient=True)
        before = state.advance(export, before, error, T1).status
        after = state.advance(export, before, ExportJob("job1", "PROCESSING"), T1).status
    elif change == "failing":
        after = state.advance(export, before, ExportJob("job1", "FAILING"), T1).status
    else:
        before = copying()
        after = copying_with(f"{before['message']}; waiting: no node")
    assert after != before
    assert state.write_now(before, after, since_written=0.1)


def test_a_running_copy_job_is_looked_at_on_its_events_and_seldom_otherwise() -> None:
    export = make_export()
    running = state.advance(export, copying(), CopyJob("nightly-copy", active=1, ready=1), T1)
    assert running.wait == state.COPY_JOB_RECHECK_SECONDS
    starting = state.advance(export, copying(), CopyJob("nightly-copy", active=1), T1)
    assert starting.wait == state.POD_LOOK_SECONDS  # its pods may say why it does not start
    # A Job whose pods wait is looked at as often as it has waited so far, within bounds.
    for waited, wait in ((10, 30), (120, 120), (3600, state.POD_LOOK_MAX_SECONDS)):
        created = timestamps.format(timestamps.parse(T1) - timedelta(seconds=waited))
        pending = CopyJob("nightly-copy", active=1, creation_timestamp=created)
        assert state.advance(export, copying(), pending, T1).wait == wait
    polling = state.advance(export, exporting(), ExportJob("job1", "PROCESSING"), T1)
    assert polling.wait is None  # Pinpoint: the poll interval
