"""The life of a PinpointExport, as pure functions: status + observation → next status.

Phases: Pending → Exporting → Copying → Succeeded | Failed. The reconciler asks `next_action`
what to do, performs it through the adapters, and hands what it saw to `advance`, which returns
the new status, the Events to post and whether to come back at once. Nothing here does I/O, so
every transition is unit-tested without a cluster. What they take and give is in `steps`; the
claim on the create, in `claims`.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, cast

from pinpoint_export_operator import api
from pinpoint_export_operator.copier.manifest import CopierSummary
from pinpoint_export_operator.exports.claims import CLAIM_SECONDS, claim
from pinpoint_export_operator.exports.status import ExportJobStatus, ExportStatus, OutputStatus
from pinpoint_export_operator.exports.steps import (
    Action,
    Caller,
    ClaimHeld,
    CopyJob,
    CopyJobMissing,
    EnsureCopyJob,
    EnsureExportJob,
    Export,
    ExportJob,
    Observation,
    ObserveCopyJob,
    Outcome,
    PollExportJob,
    WaitForClaim,
)
from pinpoint_export_operator.runtime import conditions, timestamps
from pinpoint_export_operator.runtime.errors import CloudError, bounded
from pinpoint_export_operator.runtime.events import Event

Status = ExportStatus

# Pinpoint's job statuses (JobStatus in its service model).
PINPOINT_DONE = "COMPLETED"
PINPOINT_FAILED = ("FAILED", "FAILING")
PINPOINT_ENDED = (PINPOINT_DONE, "FAILED")  # after these a job does not change
MAX_FAILURES = 10
RETRYING = "Retrying: "

# While the copy Job runs, its events wake the export: the Job is read again without one only
# this often, as a safety net (read at every poll, it was most of the operator's calls at 500
# exports). Pods send no event to the export: while none is ready, they are looked at for why
# (unschedulable, image pull), first POD_LOOK_SECONDS after the Job's creation, then as often
# as the Job's age so far, up to POD_LOOK_MAX_SECONDS: a pod that cannot start waits for
# something slow to change (room on a node, an image, a quota), and at 2,000 exports 1,600 Jobs
# waiting for room on a node, looked at every 30 s, were most of the operator's calls.
COPY_JOB_RECHECK_SECONDS = 60.0
POD_LOOK_SECONDS = 30.0
POD_LOOK_MAX_SECONDS = 480.0


def copy_job_wait(job: CopyJob, now: str) -> float:
    """How long a running copy Job is left alone, unless one of its events comes first."""
    if job.ready:
        return COPY_JOB_RECHECK_SECONDS
    age = 0.0
    if job.creation_timestamp:
        age = (timestamps.parse(now) - timestamps.parse(job.creation_timestamp)).total_seconds()
    return min(max(age, POD_LOOK_SECONDS), POD_LOOK_MAX_SECONDS)


def is_active(status: Status | None) -> bool:
    return (status or {}).get("phase") not in api.TERMINAL_PHASES


# Progress alone is written at most this often. Each status write is an API write and a watch
# event for every watcher; at 500 exports, writing each poll's news (Pinpoint's intermediate
# job statuses, a piece done, a copy pod started) was a third of the operator's writes.
PROGRESS_WRITE_SECONDS = 60.0


def write_now(written: Status, status: Status, since_written: float) -> bool:
    """Whether to write `status` now, `written` being what the API server has, written
    `since_written` seconds ago. Anything but progress is written at once: a new phase, an
    error or a recovery from one, Pinpoint's job failing, why a copy pod waits. Progress
    (Pinpoint's job status, pieces and counts while Exporting; the copy Job's pod counts while
    Copying) waits for the next write, or PROGRESS_WRITE_SECONDS since the last."""
    if status == written:
        return False
    if since_written >= PROGRESS_WRITE_SECONDS:
        return True
    phase = status.get("phase")
    if phase != written.get("phase") or phase not in ("Exporting", "Copying"):
        return True
    messages = (written.get("message", ""), status.get("message", ""))
    if any(message.startswith(RETRYING) for message in messages):
        return True
    if phase == "Copying":
        return messages[0] != messages[1]  # a copy pod's waiting reason, or its end
    return status.get("exportJob", {}).get("jobStatus") in PINPOINT_FAILED


def start(export: Export, status: Status, caller: Caller) -> Outcome:
    """Record the run id and the run's prefix before anything is created anywhere, and claim
    the first create in the same write."""
    new = claim(status, caller)
    new["phase"] = "Pending"
    new["runId"] = export.run_id
    new["startTime"] = status.get("startTime") or caller.now
    new["observedGeneration"] = export.generation
    new["message"] = "Creating the Pinpoint export job"
    new["exportJob"]["s3Url"] = export.s3_url
    new["conditions"] = _kstatus(new, "Reconciling", "Creating", new["message"], caller.now, export)
    return Outcome(new, again=True)


def next_action(status: Status, caller: Caller) -> Action:
    phase = status.get("phase")
    job = status.get("exportJob", {})
    if phase == "Pending":
        if caller.create_running_until:
            until = timestamps.parse(caller.create_running_until)
            left = (until - timestamps.parse(caller.now)).total_seconds()
            if left > 0:
                return WaitForClaim(caller.identity, left)
        requested, holder = job.get("requestedAt"), job.get("requestedBy")
        if requested and holder != caller.identity:
            age = (timestamps.parse(caller.now) - timestamps.parse(requested)).total_seconds()
            if age < CLAIM_SECONDS:
                return WaitForClaim(holder or "another replica", CLAIM_SECONDS - age)
        # Only the process that holds the claim can know that nothing was created under it; a
        # run without any claim was started by an earlier version, which may have created.
        search = not (holder == caller.identity and caller.nothing_created)
        return EnsureExportJob(job["s3Url"], search)
    if phase == "Exporting":
        if job.get("jobStatus") == PINPOINT_DONE:
            return EnsureCopyJob(job.get("totalProcessed", 0))
        return PollExportJob(job["id"], job.get("creationDate"))
    if phase == "Copying":
        return ObserveCopyJob(status["copyJob"]["name"])
    return None


def advance(export: Export, status: Status, seen: Observation, now: str) -> Outcome:
    """The next status after `seen`: the one place where every transition is decided."""
    if isinstance(seen, CloudError):
        if seen.transient:
            return _retrying(export, status, seen, now)
        return _fail(export, status, seen.reason, seen.message, now)
    if isinstance(seen, ExportJob):
        return _export_job(export, status, seen, now)
    if isinstance(seen, ClaimHeld):
        new = copy.deepcopy(status)
        new["message"] = (
            f"Waiting {seen.seconds:.0f}s: {seen.holder} claimed the Pinpoint job's creation "
            "and may still be creating it"
        )
        new["conditions"] = _kstatus(new, "Reconciling", "Creating", new["message"], now, export)
        return Outcome(new, delay=seen.seconds)
    if isinstance(seen, CopyJobMissing):
        # Its finalizer keeps a Job until its result is read: gone, it never finished, or the
        # finalizer was removed by hand. Created again (same name); the copier resumes.
        new = copy.deepcopy(status)
        new["phase"] = "Exporting"
        new["message"] = f"copy Job {seen.name} {GONE}: creating it again"
        return Outcome(new, again=True)
    return _copy_job(export, status, seen, now)


GONE = (
    "was gone before its result was read (deleted before it finished, or its finalizer "
    f"{api.COPY_JOB_FINALIZER} removed by hand)"
)


def copy_job_releasable(job: CopyJob, export: Status | None) -> bool:
    """Whether to remove the finalizer of a copy Job being deleted: no export will read its
    result (`export` None: the export is gone, or being deleted), it has none (it did not
    finish), or its export's status (as written) records it already."""
    if not (job.deleting and job.finalizer):
        return False
    if export is None or not job.finished:
        return True
    recorded = export.get("copyJob", {}).get("name") == job.name
    return recorded and export.get("phase") in api.TERMINAL_PHASES


def timed_out(export: Export, status: Status, now: str) -> Outcome | None:
    """Failed with ExportTimedOut if Pinpoint has run longer than exportTimeoutSeconds."""
    if status.get("phase") not in ("Pending", "Exporting") or not status.get("startTime"):
        return None
    limit = int(export.spec.get("exportTimeoutSeconds", 21600))
    elapsed = (timestamps.parse(now) - timestamps.parse(status["startTime"])).total_seconds()
    if elapsed <= limit:
        return None
    job = status.get("exportJob", {})
    message = f"Pinpoint job {job.get('id', '(not created)')} did not finish within {limit}s"
    if status.get("message", "").startswith(RETRYING):
        # Say what kept it from finishing, not only that it did not.
        message += f"; last error: {status['message'].removeprefix(RETRYING)}"
    return _fail(export, status, "ExportTimedOut", message, now)


def _export_job(export: Export, status: Status, job: ExportJob, now: str) -> Outcome:
    new = copy.deepcopy(status)
    new["exportJob"] = _job_status(status.get("exportJob", {}), job)
    events = []
    if status.get("phase") == "Pending":
        verb = "Adopted" if job.adopted else "Created"
        prefix = status.get("exportJob", {}).get("s3Url", export.s3_url)
        message = f"{verb} Pinpoint export job {job.id}, writing to {prefix}"
        events.append(Event("Normal", f"ExportJob{verb}", message))
    if job.job_status == PINPOINT_DONE and job.failed_pieces:
        # Some pieces were never written: what could be copied is not the whole export.
        message = (
            f"Pinpoint export job {job.id} completed with {job.failed_pieces} of "
            f"{job.total_pieces} pieces failed: {'; '.join(job.failures) or 'no details'}"
        )
        failed = _fail(export, new, "PiecesFailed", message, now)
        failed.events[:0] = events
        return failed
    if job.job_status in PINPOINT_FAILED:
        failures = "; ".join(job.failures) or "no failure details"
        message = f"Pinpoint export job {job.id} ended {job.job_status}: {failures}"
        if job.job_status == "FAILING":
            # Still winding down: report it, and poll until Pinpoint says FAILED.
            new["phase"] = "Exporting"
            new["message"] = message
            return Outcome(new, events)
        failed = _fail(export, new, "PinpointJobFailed", message, now)
        failed.events[:0] = events
        return failed
    new["phase"] = "Exporting"
    new["progress"] = _progress(job)
    new["message"] = (
        f"Pinpoint job {job.id} is {job.job_status}: {new['progress']} pieces, "
        f"{job.total_processed or 0} endpoints"
    )
    new["conditions"] = _kstatus(new, "Reconciling", "Exporting", new["message"], now, export)
    # COMPLETED leads straight to the copy Job, whose Event tells both.
    done = job.job_status == PINPOINT_DONE
    return Outcome(new, events, again=done)


def _copy_job(export: Export, status: Status, job: CopyJob, now: str) -> Outcome:
    new = copy.deepcopy(status)
    new["copyJob"] = {
        "name": job.name,
        "active": job.active,
        "succeeded": job.succeeded,
        "failed": job.failed,
    }
    events = []
    if status.get("phase") != "Copying":
        new["phase"] = "Copying"
        verb = "Created" if job.created else "Adopted"
        exported = status.get("exportJob", {})
        again = f" again: the previous one {GONE}" if "copyJob" in status else ""
        events.append(
            Event(
                "Normal",
                f"CopyJob{verb}",
                bounded(
                    f"Pinpoint exported {exported.get('totalProcessed', 0)} endpoints in "
                    f"{exported.get('totalPieces', 0)} pieces; {verb.lower()} copy Job "
                    f"{job.name}{again}"
                ),
            )
        )
    if job.finished == "Failed":
        said = "no pod of it is left to tell what the copier said" if job.pods_gone else ""
        detail = "; ".join(filter(None, (job.failure_message, said))) or "see its pods logs"
        outcome = _fail(export, new, "CopyFailed", f"copy Job {job.name} failed: {detail}", now)
        outcome.events[:0] = events
    elif job.finished == "Complete":
        outcome = _succeed(export, new, job, now, events)
    else:
        outcome = _copy_job_running(export, status, new, job, now, events)
    # A Job being deleted is let go of once this status, which holds its result, is written.
    if copy_job_releasable(job, outcome.status):
        outcome.release = job.name
    return outcome


def _copy_job_running(
    export: Export, status: Status, new: Status, job: CopyJob, now: str, events: list[Event]
) -> Outcome:
    destination = f"{export.spec['destination']['claimName']}/{export.output_path}"
    running = f"Copying the exported files to {destination}"
    if job.waiting is None and status.get("phase") == "Copying":
        new["message"] = status.get("message", running)  # pods not looked at: it still stands
    else:
        new["message"] = bounded(f"{running}; waiting: {job.waiting}") if job.waiting else running
    if new["message"] != status.get("message"):
        new["conditions"] = _kstatus(new, "Reconciling", "Copying", new["message"], now, export)
        if job.waiting:
            # Once per distinct reason: a pod that cannot start says why where users look.
            events.append(Event("Warning", "CopyPodWaiting", bounded(job.waiting)))
    return Outcome(new, events, wait=copy_job_wait(job, now))


def _succeed(
    export: Export, status: Status, job: CopyJob, now: str, events: list[Event]
) -> Outcome:
    """Succeeded; if the lines the copier counted differ from the endpoints Pinpoint reported,
    Ready=True with reason EndpointCountMismatch and a Warning, so that the files are usable
    but the difference is seen."""
    summary: CopierSummary = job.summary or {}
    status["phase"] = "Succeeded"
    status["completionTime"] = now
    output: OutputStatus = {
        "claimName": export.spec["destination"]["claimName"],
        "path": export.output_path,
        "manifest": f"{export.output_path}/manifest.json",
    }
    endpoints = status.get("exportJob", {}).get("totalProcessed")
    where = f"{output['claimName']}/{export.output_path}"
    if job.pods_gone:
        # The files are there (the Job completed); only the copier's counts are unknown.
        status["message"] = (
            f"Exported {endpoints or 0} endpoints in {where}; the copier's summary (files, "
            "bytes) was lost with its pods"
        )
    else:
        output["files"] = int(summary.get("files", 0))
        output["bytes"] = int(summary.get("bytes", 0))
        status["message"] = (
            f"Exported {endpoints or 0} endpoints: {output['files']} files, "
            f"{output['bytes']} bytes in {where}"
        )
    lines = summary.get("lines")
    if isinstance(lines, int):  # None from a copier that does not count them
        output["lines"] = lines
    status["output"] = output
    warnings = []
    if "lines" in output and endpoints is not None and output["lines"] != endpoints:
        mismatch = (
            f"the files hold {output['lines']} lines, but Pinpoint reported {endpoints} "
            "endpoints exported"
        )
        status["message"] = bounded(f"{status['message']}; {mismatch}")
        warnings.append(Event("Warning", "EndpointCountMismatch", status["message"]))
        status["conditions"] = _kstatus(
            status, "Ready", "EndpointCountMismatch", status["message"], now, export
        )
    else:
        status["conditions"] = _kstatus(
            status, "Ready", "Succeeded", status["message"], now, export
        )
    return Outcome(status, [*events, *warnings, Event("Normal", "Succeeded", status["message"])])


def _fail(export: Export, status: Status, reason: str, message: str, now: str) -> Outcome:
    new = copy.deepcopy(status)
    message = bounded(message)
    new["phase"], new["completionTime"], new["message"] = "Failed", now, message
    new["conditions"] = _kstatus(new, "Stalled", reason, message, now, export)
    return Outcome(new, [Event("Warning", reason, message)])


def _retrying(export: Export, status: Status, error: CloudError, now: str) -> Outcome:
    new = copy.deepcopy(status)
    new["message"] = bounded(f"{RETRYING}{error.message}")
    new["conditions"] = _kstatus(new, "Reconciling", error.reason, new["message"], now, export)
    # One Warning per kind of trouble, not one per retry.
    unchanged = status.get("message") == new["message"]
    events = [] if unchanged else [Event("Warning", error.reason, bounded(error.message))]
    return Outcome(new, events, retry=True)


def _kstatus(
    status: Status,
    state: Literal["Ready", "Reconciling", "Stalled"],
    reason: str,
    message: str,
    now: str,
    export: Export,
) -> list[conditions.Condition]:
    """The three kstatus conditions, with `state` the one that is True."""
    return conditions.summary(
        status.get("conditions", []),
        ready=state == "Ready",
        reconciling=state == "Reconciling",
        stalled=state == "Stalled",
        reason=reason,
        message=message,
        now=now,
        generation=export.generation,
    )


def _job_status(previous: ExportJobStatus, job: ExportJob) -> ExportJobStatus:
    fields: dict[str, Any] = {
        "id": job.id,
        "jobStatus": job.job_status,
        "completedPieces": job.completed_pieces,
        "totalPieces": job.total_pieces,
        "failedPieces": job.failed_pieces,
        "totalProcessed": job.total_processed,
        "totalFailures": job.total_failures,
        "failures": list(job.failures[:MAX_FAILURES]),
        "creationDate": job.creation_date,
        "completionDate": job.completion_date,
    }
    # What Pinpoint left out keeps its last value.
    merged = {**previous, **{k: v for k, v in fields.items() if v not in (None, [])}}
    return cast(ExportJobStatus, merged)


def _progress(job: ExportJob) -> str:
    return f"{job.completed_pieces or 0}/{job.total_pieces or 0}" if job.total_pieces else "0/?"
