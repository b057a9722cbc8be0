"""The loop that carries one PinpointExport to its end: act, observe, decide, record.

Decisions come from `export_state`; this module only performs the chosen action through the
adapters, patches the status when (and only when) it changed, posts the Events, and waits:
`pollIntervalSeconds` while Pinpoint works, a jittered backoff after a transient error, until
another replica's claim on the create has expired, or, while its copy Job runs, until an event
of the Job wakes it (with a slower look as a safety net).

Exactly one Pinpoint job per export: before each CreateExportJob the status is patched with a
claim (who, when) preconditioned on the resourceVersion this process last saw, so that of two
writers one gets 409 and stands back; the create itself is never retried by the SDK; and when a
create may have acted unanswered, the next attempt searches for its job first.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
import urllib3
from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.config import ExportDefaults
from pinpoint_export_operator.exports import claims, copy_job, tenancy
from pinpoint_export_operator.exports import state as export_state
from pinpoint_export_operator.exports.credentials import SecretKeys
from pinpoint_export_operator.exports.kube import CredentialsError, Kube, copy_job_status
from pinpoint_export_operator.exports.pinpoint import Pinpoint, SearchCursor, job_moment
from pinpoint_export_operator.exports.polls import JobPolls
from pinpoint_export_operator.exports.state import Status
from pinpoint_export_operator.exports.steps import (
    Action,
    Caller,
    ClaimHeld,
    CopyJob,
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
from pinpoint_export_operator.runtime import events, metrics, timestamps
from pinpoint_export_operator.runtime.aws import (
    ATTEMPT_SECONDS,
    AwsCalls,
    Identity,
    StaticCredentials,
    classify,
    endpoint_refusal,
)
from pinpoint_export_operator.runtime.backoff import backoff
from pinpoint_export_operator.runtime.errors import CloudError, kubernetes_error
from pinpoint_export_operator.runtime.events import Event
from pinpoint_export_operator.runtime.objects import own_status, plain
from pinpoint_export_operator.runtime.timestamps import now
from pinpoint_export_operator.runtime.wakeups import Stopped, Wakeups, wait_for_wakeup

# Kopf starts a new export's daemon, then adds its finalizer: the first claim waits (this long
# at most) for the event that shows the finalizer, else its precondition is stale at once. The
# wait ends on that event, so the bound costs nothing; with 2,000 exports created at once Kopf's
# finalizer came more than 10 s later for a third of them, each then a refused write and a read.
FINALIZER_WAIT = 60.0


# Who claims a create (status.exportJob.requestedBy): one value per operator process.
IDENTITY = f"{socket.gethostname()}/{os.getpid()}"


@dataclass
class _Run:
    """What this process knows of one export's run, beyond its status."""

    export: Export
    status: Status  # as decided
    written: Status  # as the API server has it
    resource_version: str
    written_at: float = 0.0  # monotonic time of the last status write (0: not by this process)
    nothing_created: bool = False  # see Caller
    create_running_until: str | None = None  # see Caller
    claimed: bool = False  # the status written last claims the next create already
    preflight_done: bool = False
    cursor: SearchCursor = field(default_factory=SearchCursor)
    pending: list[Event] = field(default_factory=list)
    phase_since: float | None = None  # monotonic; None if the phase began before this process
    keys: StaticCredentials | None = None  # the Secret's keys the last AWS call was made with
    pods_looked_at: float = 0.0  # monotonic; see export_state.POD_LOOK_SECONDS
    release: str | None = None  # the copy Job to let go of once the status is written


class ExportReconciler:
    def __init__(
        self,
        kube: Kube,
        aws: AwsCalls,
        defaults: ExportDefaults,
        wakeups: Wakeups,
        copy_jobs: ThreadPoolExecutor | None = None,
    ) -> None:
        self._kube = kube
        self._aws = aws
        # Where copy Jobs are created (None: with the other Kubernetes calls). Threads of their
        # own: at 500 exports, polls saw jobs end within 7 s but copy Jobs were created within
        # 15 s (p99), their creates queued behind the other calls (the pool's wait p99 10 s).
        self._copy_jobs = copy_jobs
        self._polls = JobPolls(aws, wakeups.poke)
        self._defaults = defaults
        self.wakeups = wakeups
        self._awaiting_finalizer: set[str] = set()
        self._seen_jobs: dict[str, dict[str, Any]] = {}  # export uid -> its copy Job, as seen
        # Read through the adapter when first needed (tests pass adapters that refuse calls).
        self._keys = SecretKeys(lambda namespace, name: kube.read_credentials(namespace, name))

    def saw(self, body: kopf.Body) -> None:
        """An export's event: wakes its daemon if it waits for Kopf's finalizer (its other
        waits end on copy Job events and timers only, never on its own status writes)."""
        uid = body["metadata"]["uid"]
        if uid in self._awaiting_finalizer:
            self.wakeups.poke(uid)

    async def copy_job_seen(self, event_type: str | None, job: kopf.Body, logger: Any) -> None:
        """A copy Job's event: wakes the daemons of its owners; the next observation of its
        controller uses the Job as the event has it rather than reading it again (a deleted
        Job is read again, to be found missing). A Job being deleted loses its finalizer here
        once no daemon will read it (`export_state.copy_job_releasable`)."""
        controller: dict[str, Any] | None = None
        for owner in job.metadata.get("ownerReferences", []):
            uid = owner["uid"]
            if owner.get("controller"):
                controller = owner
                if self.wakeups.registered(uid):
                    if event_type == "DELETED":
                        self._seen_jobs.pop(uid, None)
                    else:
                        self._seen_jobs[uid] = plain(job)
            self.wakeups.poke(uid)
        if event_type == "DELETED" or not job.metadata.get("deletionTimestamp"):
            return
        meta = job.metadata
        try:
            export = await self._export_of(meta["namespace"], controller)
            if export_state.copy_job_releasable(copy_job_status(plain(job)), export):
                await asyncio.to_thread(
                    self._kube.release_copy_job,
                    meta["namespace"],
                    meta["name"],
                    list(meta["finalizers"]),
                )
        except (client.ApiException, RuntimeError) as error:
            # Tried again at the Job's next event, or when Kopf lists the Jobs again.
            logger.warning(f"copy Job {meta['name']} keeps its finalizer: {error}")

    async def _export_of(self, namespace: str, owner: dict[str, Any] | None) -> Status | None:
        """The status of the export that controls a copy Job; None if it is gone or being
        deleted (its daemon stops: no one will read the Job)."""
        if owner is None:
            return None
        try:
            obj = await asyncio.to_thread(self._kube.read_export, namespace, owner["name"])
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise
        meta = obj["metadata"]
        if meta.get("uid") != owner["uid"] or meta.get("deletionTimestamp"):
            return None
        return cast(Status, own_status(obj))

    def close(self) -> None:
        self._aws.close()
        if self._copy_jobs is not None:
            self._copy_jobs.shutdown(wait=False, cancel_futures=True)

    async def run(self, body: kopf.Body, stopped: Stopped, logger: Any) -> None:
        meta = body["metadata"]
        export = Export(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            creation_timestamp=meta["creationTimestamp"],
            generation=meta.get("generation"),
            spec=dict(body["spec"]),
        )
        wakeup = self.wakeups.register(export.uid)
        attempt = 0
        metrics.ACTIVE.inc()
        try:
            if not body.get("status", {}).get("phase"):
                await self._finalizer_added(body, wakeup, stopped)
            # `body` is Kopf's live view, now at its latest version: the status and the
            # resourceVersion the claim is preconditioned on are read together, with no await.
            status = cast(Status, own_status(body))
            run = _Run(export, status, status, body["metadata"]["resourceVersion"])
            if not status.get("phase"):
                await self._start(run)
            while export_state.is_active(run.status) and not stopped:
                wakeup.clear()  # events from here on wake the wait below
                step_began = time.monotonic()
                caller = Caller(IDENTITY, now(), run.nothing_created, run.create_running_until)
                outcome = export_state.timed_out(export, run.status, caller.now)
                if outcome is None:
                    outcome = await self._step(run, caller)
                if outcome is None:
                    continue  # another writer came first: decide again on what it wrote
                run.status = outcome.status
                run.pending += outcome.events
                run.release = outcome.release or run.release
                if outcome.again:
                    continue  # the next step is ready: write once, after it
                if (
                    run.pending
                    or run.release
                    or export_state.write_now(
                        run.written, run.status, time.monotonic() - run.written_at
                    )
                ):
                    await self._commit(body, run)
                    await self._let_go(run, logger)
                if not export_state.is_active(run.status):
                    # Ended: no wait. Kopf stops a daemon it finds still running when the final
                    # status arrives in later passes, which may patch the object to come back.
                    break
                if outcome.retry:
                    delay = backoff(attempt)
                    attempt += 1
                    logger.info(f"retrying in {delay:.1f}s: {run.status.get('message')}")
                else:
                    attempt = 0
                    # Polls begin every interval: the time a poll took (a wait for an AWS
                    # place, the call, the write) is not added to the gap before the next, or a
                    # job's end would be seen up to that much later than the interval says.
                    poll = float(export.spec.get("pollIntervalSeconds", 15))
                    next_poll = max(0.0, step_began + poll - time.monotonic())
                    delay = outcome.delay or outcome.wait or next_poll
                await wait_for_wakeup(delay, wakeup, stopped)
                if outcome.delay:
                    await self._reread(run)  # what the claim's holder recorded meanwhile
            await self._commit(body, run)
            # A deletion of the copy Job begun since its last observation is in an event not
            # read yet. (An event after this finds the final status: its handler lets go.)
            late = self._seen_jobs.get(export.uid)
            if late and export_state.copy_job_releasable(copy_job_status(late), run.status):
                run.release = late["metadata"]["name"]
            await self._let_go(run, logger)
        finally:
            metrics.ACTIVE.dec()
            self.wakeups.forget(export.uid)
            self._polls.forget(export.uid)
            self._seen_jobs.pop(export.uid, None)

    async def _finalizer_added(
        self, body: kopf.Body, wakeup: asyncio.Event, stopped: Stopped
    ) -> None:
        uid = body["metadata"]["uid"]
        deadline = time.monotonic() + FINALIZER_WAIT
        self._awaiting_finalizer.add(uid)
        try:
            while not stopped and time.monotonic() < deadline:
                wakeup.clear()
                if api.FINALIZER in (body["metadata"].get("finalizers") or ()):
                    return
                await wait_for_wakeup(deadline - time.monotonic(), wakeup, stopped)
        finally:
            self._awaiting_finalizer.discard(uid)

    async def _start(self, run: _Run) -> None:
        """Record the run and claim its first create, in one write that only succeeds if no
        one else wrote the object since we read it."""
        caller = Caller(IDENTITY, now(), nothing_created=True)
        if await self._claim(run, export_state.start(run.export, run.status, caller).status):
            run.nothing_created = run.claimed = True
            run.phase_since = time.monotonic()
            metrics.TRANSITIONS.labels("Pending").inc()
        elif not run.status.get("phase"):
            await self._start(run)  # only our own view was stale

    async def _claim(self, run: _Run, status: Status) -> bool:
        """Write `status` only if the object is still at the resourceVersion this process last
        saw. False, with the object read again, if another writer came first (409)."""
        try:
            run.resource_version = await asyncio.to_thread(
                self._kube.patch_export_status,
                run.export.namespace,
                run.export.name,
                status,
                run.resource_version,
            )
        except client.ApiException as error:
            if error.status != 409:
                raise
            await self._reread(run)
            return False
        run.status = run.written = status
        run.written_at = time.monotonic()
        return True

    async def _reread(self, run: _Run) -> None:
        obj = await asyncio.to_thread(self._kube.read_export, run.export.namespace, run.export.name)
        run.status = run.written = cast(Status, own_status(obj))
        run.resource_version = obj["metadata"]["resourceVersion"]
        run.claimed = False

    async def _step(self, run: _Run, caller: Caller) -> Outcome | None:
        action = export_state.next_action(run.status, caller)
        run.keys = None  # set by the step's AWS call, if it makes one
        try:
            if isinstance(action, EnsureExportJob):
                seen = await self._ensure_export_job(run, action, caller)
                if seen is None:
                    return None
            else:
                seen = await self._perform(run, action)
        except CredentialsError as error:
            seen = error.error
        except (client.ApiException, urllib3.exceptions.HTTPError) as error:
            seen = kubernetes_error(error, type(action).__name__)
        except Exception as error:
            seen = classify(error, type(action).__name__)
        if isinstance(seen, CloudError) and seen.reason == "AccessDenied":
            seen = await self._denied(run, seen)
        if isinstance(seen, CloudError):
            metrics.CLOUD_ERRORS.labels(seen.reason, str(seen.transient).lower()).inc()
        return export_state.advance(run.export, run.status, seen, caller.now)

    async def _ensure_export_job(
        self, run: _Run, action: EnsureExportJob, caller: Caller
    ) -> Observation | None:
        """Preflight once, claim, search if a create may have gone before, then create.
        None: the claim was lost to another writer."""
        export, spec = run.export, run.export.spec
        if not run.preflight_done:
            refused = await self._preflight(export)
            if refused is not None:
                # Waiting for what the preflight lacks can outlast the claim: another replica
                # may claim meanwhile, so the create that follows claims anew (preconditioned).
                run.claimed = False
                return refused
            run.preflight_done = True
        if not run.claimed and not await self._claim(run, claims.claim(run.status, caller)):
            return None
        run.create_running_until = None  # claimed after that time: waited out
        run.claimed = False  # each attempt claims afresh: its time is what others wait on
        app, segment = spec["applicationId"], spec.get("segmentId")
        identity = await self._identity(run)
        if action.search:
            pinpoint = Pinpoint(self._aws.client("pinpoint", identity))
            found = await self._aws.run(
                pinpoint.find_export_job,
                app,
                segment,
                action.s3_url,
                claims.search_cutoff(export, run.status),
                run.cursor,
            )
            if found is not None:
                return self._follow(run, identity, found)
        creator = Pinpoint(self._aws.client("pinpoint", identity, retries=False))

        def create() -> ExportJob | None:
            # Judged once a thread is free: waiting for one counts against the claim too.
            if not claims.claim_holds(run.status, now(), ATTEMPT_SECONDS):
                return None
            return creator.create_export_job(
                app, spec["roleArn"], action.s3_url, segment, spec.get("segmentVersion")
            )

        async with self._aws.slot():
            while True:
                try:
                    created = await self._aws.call(create)
                except Exception as error:
                    failure = classify(error, "CreateExportJob")
                    # Refused outright, nothing was made; otherwise the next attempt looks first.
                    run.nothing_created = not failure.ambiguous
                    if failure.unfinished:
                        until = timestamps.parse(now()) + timedelta(seconds=ATTEMPT_SECONDS)
                        run.create_running_until = timestamps.format(until)
                    return failure
                if created is not None:
                    return self._follow(run, identity, created)
                # Too old to outlive the call: claim again, with the slot held (renewed, then
                # queued again, it could age past the limit again: at 2,000 exports creates
                # were renewed every 30 s or so while the queue lasted). A write that succeeds
                # proves that no one claimed since ours, so what the search found still stands.
                renewed = claims.claim(run.status, replace(caller, now=now()))
                if not await self._claim(run, renewed):
                    return None

    def _follow(self, run: _Run, identity: Identity, job: ExportJob) -> ExportJob:
        """The run's job, just made or found: the polls of other exports that see it end wake
        this one, before its first poll too."""
        app = run.export.spec["applicationId"]
        self._polls.watch(identity, app, job.id, run.export.uid)
        return job

    async def _preflight(self, export: Export) -> CloudError | None:
        """What would stop the run or the copy later, refused before Pinpoint runs."""
        refused = self._roles_refused(export)
        if refused is not None:
            return refused
        refusal = copy_job.image_refusal(export, self._defaults.copier)
        if refusal:
            return CloudError("CopierImageNotAllowed", refusal, transient=False)
        for field_name in ("endpointUrl", "s3EndpointUrl"):
            refusal = endpoint_refusal(f"spec.{field_name}", export.spec.get(field_name))
            if refusal:
                return CloudError("InvalidSpec", refusal, transient=False)
        manifest = copy_job.build(export, self._defaults.copier)
        return await asyncio.to_thread(self._kube.preflight_copy_job, manifest)

    def _roles_refused(self, export: Export) -> CloudError | None:
        """`--allowed-roles` applied to the roles the export names. Checked again before each
        later step that uses them, so a narrower mapping also stops runs begun before it."""
        refusal = tenancy.role_refusal(export.namespace, export.spec, self._defaults.allowed_roles)
        return None if refusal is None else CloudError("RoleNotAllowed", refusal, transient=False)

    async def _perform(self, run: _Run, action: Action) -> Observation:
        export = run.export
        if isinstance(action, WaitForClaim):
            return ClaimHeld(action.holder, action.seconds)
        if isinstance(action, PollExportJob | EnsureCopyJob):  # AWS calls, the copier's too
            refused = self._roles_refused(export)
            if refused is not None:
                return refused
        if isinstance(action, PollExportJob):
            identity = await self._identity(run)
            app = export.spec["applicationId"]
            job = await self._polls.poll(
                identity, app, action.job_id, action.created, waiter=export.uid
            )
            if job.job_status == export_state.PINPOINT_DONE:
                _since_completion(job.completion_date, "seen")
            return job
        if isinstance(action, EnsureCopyJob):
            manifest = copy_job.build(export, self._defaults.copier, action.exported_endpoints)
            run.pods_looked_at = time.monotonic()
            made = await asyncio.get_running_loop().run_in_executor(
                self._copy_jobs, self._kube.ensure_copy_job, manifest
            )
            # The run's first copy Job: one made again, after the first went missing, comes
            # hours after COMPLETED and is not a delay of the operator's.
            if isinstance(made, CopyJob) and made.created and "copyJob" not in run.status:
                _since_completion(run.status["exportJob"].get("completionDate"), "copy_job")
            return made
        if isinstance(action, ObserveCopyJob):
            seen = self._seen_jobs.pop(export.uid, None)
            if seen is not None and seen["metadata"]["name"] != action.name:
                seen = None
            look = time.monotonic() - run.pods_looked_at >= export_state.POD_LOOK_SECONDS
            if look:
                run.pods_looked_at = time.monotonic()
            return await asyncio.to_thread(
                self._kube.observe_copy_job, export.namespace, action.name, seen, look
            )
        raise AssertionError(f"no action for an export in phase {action!r}")

    async def _identity(self, run: _Run) -> Identity:
        """Where the export's Pinpoint calls go, and as whom."""
        export = run.export
        spec = export.spec
        secret = _secret_name(export)
        run.keys = await self._keys.get(export.namespace, secret) if secret else None
        return Identity(
            region=spec.get("region") or self._defaults.region,
            endpoint_url=spec.get("endpointUrl") or self._defaults.pinpoint_endpoint_url,
            credentials=run.keys,
            assume_role=tenancy.assume_role(export, self._defaults.assume_role),
        )

    async def _denied(self, run: _Run, denied: CloudError) -> CloudError:
        """A call refused as whom it was made: retried if the Secret holds other keys by now
        (rotated while they were cached), else final as before."""
        secret = _secret_name(run.export)
        if run.keys is None or secret is None:
            return denied
        try:
            rotated = await self._keys.rotated(run.export.namespace, secret, run.keys)
        except (CredentialsError, client.ApiException):
            return denied  # the refusal stands; the next read says what is wrong with it
        if not rotated:
            return denied
        message = f"{denied.message} (the Secret's keys changed since: trying them)"
        return CloudError(denied.reason, message, transient=True)

    async def _commit(self, body: kopf.Body, run: _Run) -> None:
        """Patch the status if it changed since last written, then post the Events."""
        status, written = run.status, run.written
        if status != written:
            run.resource_version = await asyncio.to_thread(
                self._kube.patch_export_status, run.export.namespace, run.export.name, status
            )
            run.written, run.written_at = status, time.monotonic()
            if status.get("phase") != written.get("phase"):
                _count_transition(run, written, status)
        for event in run.pending:
            events.post(body, event)
        run.pending = []

    async def _let_go(self, run: _Run, logger: Any) -> None:
        """Remove the finalizer of the copy Job being deleted whose result (if any) the status
        written holds."""
        name, run.release = run.release, None
        if name is None:
            return
        try:
            await asyncio.to_thread(self._kube.release_copy_job, run.export.namespace, name)
        except (client.ApiException, RuntimeError) as error:
            # Tried again at the Job's next observation or event.
            logger.warning(f"copy Job {name} keeps its finalizer: {error}")


def _since_completion(completion_date: str | None, step: str) -> None:
    completed = job_moment(completion_date)
    if completed is not None:
        seconds = (datetime.now(UTC) - completed).total_seconds()
        metrics.SINCE_COMPLETION.labels(step).observe(max(0.0, seconds))


def _secret_name(export: Export) -> str | None:
    name = export.spec.get("credentials", {}).get("secretRef", {}).get("name")
    return str(name) if name else None


def _count_transition(run: _Run, before: Status, after: Status) -> None:
    """The metrics of a phase change: the transition, the phase's duration, what was copied."""
    metrics.TRANSITIONS.labels(after["phase"]).inc()
    now = time.monotonic()
    if run.phase_since is not None and before.get("phase"):
        metrics.PHASE_SECONDS.labels(before["phase"]).observe(now - run.phase_since)
    run.phase_since = now
    if after["phase"] == "Succeeded":
        output = after.get("output", {})
        metrics.EXPORTED_ENDPOINTS.inc(after.get("exportJob", {}).get("totalProcessed", 0))
        metrics.COPIED_FILES.inc(output.get("files", 0))
        metrics.COPIED_BYTES.inc(output.get("bytes", 0))
