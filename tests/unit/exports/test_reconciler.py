"""The export reconciler against a fake API server and a fake Pinpoint: the claims it writes
and the creates it makes, with one replica or two sharing the same export."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import botocore.exceptions
import kopf
import pytest
from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.config import ExportDefaults
from pinpoint_export_operator.exports import reconciler as reconciler_module
from pinpoint_export_operator.exports.claims import CLAIM_SECONDS
from pinpoint_export_operator.exports.kube import Kube
from pinpoint_export_operator.exports.reconciler import IDENTITY, ExportReconciler, _Run
from pinpoint_export_operator.exports.steps import Caller, Export, Outcome
from pinpoint_export_operator.runtime import events as events_module
from pinpoint_export_operator.runtime import metrics, timestamps
from pinpoint_export_operator.runtime.aws import ATTEMPT_SECONDS
from pinpoint_export_operator.runtime.kube_json import Json, namespaced
from pinpoint_export_operator.runtime.objects import own_status
from pinpoint_export_operator.runtime.wakeups import Wakeups

from ..logs import Logger
from . import test_state as state_tests
from .test_state import T0, make_export

STANDBY = "standby/2"  # a second replica's identity


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies one."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


class FakeApi:
    """The API server as the Kube adapter calls it (KubeJson's methods), holding one export:
    status patches preconditioned on a stale resourceVersion get 409, as the real one does."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self.path = namespaced(api.API_VERSION, export.namespace, api.EXPORTS, export.name)
        meta = {
            "namespace": export.namespace,
            "name": export.name,
            "uid": export.uid,
            "creationTimestamp": export.creation_timestamp,
            "resourceVersion": "1",
        }
        self.objects: dict[str, Json] = {self.path: {"metadata": meta, "spec": export.spec}}
        self.claims: list[tuple[str, str]] = []  # (requestedBy, requestedAt) written
        self.writes: list[str] = []  # "status", "create <path>", "finalizers <path>"
        self.created_on = ""  # the thread of the last create
        self.add("persistentvolumeclaims", export.spec["destination"]["claimName"])
        self.objects[namespaced("v1", export.namespace, "pods")] = {"items": []}

    def add(self, resource: str, name: str) -> None:
        self.objects[namespaced("v1", self.export.namespace, resource, name)] = {}

    def get(self, path: str, query: dict[str, str] | None = None) -> Json:
        if path not in self.objects:
            raise client.ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.objects[path])

    def request(self, method: str, path: str, **_: Any) -> Json:
        return {}  # the copy Job's dry run: accepted

    def merge_patch(self, path: str, body: Json) -> Json:
        obj = self.objects[path.removesuffix("/status")]
        version = obj["metadata"]["resourceVersion"]
        if body.get("metadata", {}).get("resourceVersion") not in (None, version):
            raise client.ApiException(status=409, reason="Conflict")
        obj["status"] = merged(obj.get("status"), body["status"])
        obj["metadata"]["resourceVersion"] = str(int(version) + 1)
        job = body["status"].get("exportJob", {})
        if "requestedAt" in job and "metadata" in body:
            self.claims.append((job["requestedBy"], job["requestedAt"]))
        self.writes.append("status")
        return copy.deepcopy(obj)

    def create(self, collection: str, body: Json) -> Json:
        path = f"{collection}/{body['metadata']['name']}"
        self.writes.append(f"create {path}")
        self.created_on = threading.current_thread().name
        if path in self.objects:
            raise client.ApiException(status=409, reason="Conflict")
        self.objects[path] = copy.deepcopy(body)
        return copy.deepcopy(body)

    def json_patch(self, path: str, operations: list[Json]) -> Json:
        if path not in self.objects:
            raise client.ApiException(status=404, reason="Not Found")
        finalizers = self.objects[path]["metadata"].setdefault("finalizers", [])
        test, _ = operations  # test, then remove: the only patch the adapter sends
        index = int(test["path"].rsplit("/", 1)[1])
        if finalizers[index : index + 1] != [test["value"]]:
            raise client.ApiException(status=422, reason="Unprocessable Entity")
        del finalizers[index]
        self.writes.append(f"finalizers {path}")
        return copy.deepcopy(self.objects[path])


class FakePinpoint:
    """Pinpoint's export calls as the boto3 client takes them, shared by the replicas."""

    def __init__(self) -> None:
        self.jobs: list[Json] = []  # newest first, as Pinpoint lists them
        self.listings: list[str | None] = []  # the Token of each GetExportJobs
        self.slow_creates = 0  # creates still being made when the client stops waiting
        self.in_the_making: list[Json] = []  # their jobs, not listed yet

    def create_export_job(self, ApplicationId: str, ExportJobRequest: Json) -> Json:
        job = {
            "Id": f"job-{len(self.jobs) + len(self.in_the_making) + 1}",
            "JobStatus": "CREATED",
            "Definition": ExportJobRequest,
            "CreationDate": clock.now(),
        }
        if self.slow_creates:
            self.slow_creates -= 1
            self.in_the_making.append(job)
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="https://pinpoint")
        self.jobs.insert(0, job)
        return {"ExportJobResponse": job}

    def finish_making(self) -> None:
        self.jobs[:0] = reversed(self.in_the_making)
        self.in_the_making = []

    def get_export_job(self, ApplicationId: str, JobId: str) -> Json:
        return {"ExportJobResponse": next(job for job in self.jobs if job["Id"] == JobId)}

    def get_export_jobs(self, ApplicationId: str, PageSize: str, Token: str | None = None) -> Json:
        self.listings.append(Token)
        return {"ExportJobsResponse": {"Item": list(self.jobs)}}


class FakeAws:
    """AwsCalls without threads: `waiting` runs once a call has its slot, before the call
    (the time the wait for a free thread took, what happened meanwhile)."""

    def __init__(self, pinpoint: FakePinpoint) -> None:
        self.pinpoint = pinpoint
        self.waiting: list[Callable[[], None]] = []
        self.slots = 0  # taken so far

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self.slot():
            return await self.call(fn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        self.slots += 1
        while self.waiting:
            self.waiting.pop(0)()
        yield

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def client(self, service: str, identity: Any, *, retries: bool = True) -> FakePinpoint:
        return self.pinpoint

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.at = timestamps.parse(T0)

    def now(self) -> str:
        return timestamps.format(self.at)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


clock = Clock()


@pytest.fixture(autouse=True)
def fake_clock_and_events(monkeypatch: pytest.MonkeyPatch) -> None:
    clock.at = timestamps.parse(T0)
    monkeypatch.setattr(reconciler_module, "now", clock.now)
    monkeypatch.setattr(events_module.kopf, "event", lambda *_, **__: None)


class Replica:
    """One operator process's reconciler and its view of the export."""

    def __init__(self, fake: FakeApi, pinpoint: FakePinpoint, identity: str = IDENTITY) -> None:
        self.fake = fake
        self.aws = FakeAws(pinpoint)
        self.reconciler = ExportReconciler(Kube(fake), self.aws, ExportDefaults(), Wakeups())  # type: ignore[arg-type]
        self.identity = identity
        obj = fake.get(fake.path)
        self.run = _Run(fake.export, own_status(obj), own_status(obj), "")
        self.run.resource_version = obj["metadata"]["resourceVersion"]

    def start(self) -> None:
        asyncio.run(self.reconciler._start(self.run))

    def step(self) -> Outcome | None:
        """One pass of the daemon's loop, without its wait: act, decide, commit."""
        run = self.run
        caller = Caller(self.identity, clock.now(), run.nothing_created, run.create_running_until)
        outcome = asyncio.run(self.reconciler._step(run, caller))
        if outcome is not None:
            run.status = outcome.status
            run.pending += outcome.events
            asyncio.run(self.reconciler._commit({}, run))  # type: ignore[arg-type]
        return outcome


def reason(outcome: Outcome | None) -> str | None:
    return None if outcome is None else outcome.status["conditions"][-1]["reason"]


def created(pinpoint: FakePinpoint, export: Export) -> int:
    return sum(job["Definition"]["S3UrlPrefix"] == export.s3_url for job in pinpoint.jobs)


def test_a_refused_preflight_drops_the_claim_so_two_replicas_create_once() -> None:
    """Both replicas wait for a missing claim (PVC); once it exists, the one whose claim was
    written before the wait must claim again, and lose to the other's newer claim."""
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    fake.objects.pop(namespaced("v1", export.namespace, "persistentvolumeclaims", "exports"))
    first = Replica(fake, pinpoint)
    first.start()  # records the run and claims the first create
    assert reason(first.step()) == "ClaimNotFound"
    clock.advance(CLAIM_SECONDS + 1)  # the first replica's claim has expired: the standby may go on
    standby = Replica(fake, pinpoint, STANDBY)
    assert reason(standby.step()) == "ClaimNotFound"
    fake.add("persistentvolumeclaims", "exports")  # GitOps creates it
    assert standby.step() is not None
    assert first.step() is None  # its claim is written again, against a stale version: 409
    assert created(pinpoint, export) == 1
    assert [by for by, _ in fake.claims] == [IDENTITY, STANDBY]


def test_a_claim_grown_too_old_before_the_create_is_written_again_first() -> None:
    """The Secret's read, the search and the wait for a thread took longer than the claim
    less one call's 40 s: a create begun now could outlast it, so it is renewed first."""
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    replica = Replica(fake, pinpoint)
    replica.start()
    replica.aws.waiting.append(lambda: clock.advance(CLAIM_SECONDS - ATTEMPT_SECONDS + 5))
    outcome = replica.step()
    assert outcome is not None and outcome.status["phase"] == "Exporting"
    assert fake.claims == [(IDENTITY, T0), (IDENTITY, clock.now())]
    assert pinpoint.jobs[0]["CreationDate"] == clock.now()  # after the new claim
    assert created(pinpoint, export) == 1
    # Renewed with the slot held: queued again, the claim could grow too old again.
    assert replica.aws.slots == 1


def test_a_create_without_an_answer_is_waited_out_before_the_search() -> None:
    """Pinpoint still makes the job after the client stopped waiting (a read timeout): a
    search at once would miss it and a create would make a second job: one call's time is
    waited out first."""
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    pinpoint.slow_creates = 1
    replica = Replica(fake, pinpoint)
    replica.start()
    assert reason(replica.step()) == "EndpointUnreachable"  # no answer: retried
    clock.advance(ATTEMPT_SECONDS - 1)
    assert reason(replica.step()) == "Creating"  # waits: the create may still be running
    assert (len(pinpoint.listings), created(pinpoint, export)) == (0, 0)
    pinpoint.finish_making()  # Pinpoint's job appears
    clock.advance(1)
    outcome = replica.step()
    assert outcome is not None and outcome.status["exportJob"]["id"] == "job-1"
    assert created(pinpoint, export) == 1


def test_a_claim_taken_over_while_waiting_for_a_thread_creates_nothing() -> None:
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    replica = Replica(fake, pinpoint)
    replica.start()

    def taken_over() -> None:
        clock.advance(CLAIM_SECONDS + 1)
        status = {"exportJob": {"requestedBy": STANDBY, "requestedAt": clock.now()}}
        version = fake.objects[fake.path]["metadata"]["resourceVersion"]
        fake.merge_patch(
            f"{fake.path}/status", {"metadata": {"resourceVersion": version}, "status": status}
        )

    replica.aws.waiting.append(taken_over)
    assert replica.step() is None  # the renewed claim conflicts: decide again on what is there
    assert created(pinpoint, export) == 0
    assert replica.run.status["exportJob"]["requestedBy"] == STANDBY


class NeverStopped:
    def __bool__(self) -> bool:
        return False

    async def wait(self) -> None:
        await asyncio.Event().wait()


def copy_job(export: Export, deleting: bool, *conditions: str) -> Json:
    """The export's copy Job as the API server shows it; `conditions` True, e.g. Complete."""
    meta: Json = {
        "namespace": export.namespace,
        "name": api.copy_job_name(export.name),
        "ownerReferences": [{"uid": export.uid, "name": export.name, "controller": True}],
        "finalizers": [api.COPY_JOB_FINALIZER],
    }
    if deleting:
        meta["deletionTimestamp"] = T0
        meta["finalizers"].insert(0, "foregroundDeletion")  # the TTL controller's propagation
    status = {"conditions": [{"type": c, "status": "True"} for c in conditions]}
    return {"metadata": meta, "status": status}


def job_path(export: Export) -> str:
    return namespaced("batch/v1", export.namespace, "jobs", api.copy_job_name(export.name))


def copying(fake: FakeApi) -> None:
    """The export Copying, as a daemon left it."""
    status = state_tests.copying()
    fake.merge_patch(f"{fake.path}/status", {"status": status})
    fake.writes.clear()


def run_daemon(
    reconciler: ExportReconciler, fake: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> list[float]:
    """Run the export's daemon to its end; the waits it made between steps."""
    waits: list[float] = []

    async def wait(delay: float, *_: Any) -> None:
        waits.append(delay)

    monkeypatch.setattr(reconciler_module, "wait_for_wakeup", wait)
    asyncio.run(reconciler.run(fake.get(fake.path), NeverStopped(), Logger()))  # type: ignore[arg-type]
    return waits


def test_polls_begin_every_interval_whatever_a_poll_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll that waited for an AWS place shortens the wait before the next: added to the
    interval, it would delay seeing COMPLETED by as much."""
    interval, took = 5, 0.3
    export = make_export(pollIntervalSeconds=interval)
    fake, pinpoint = FakeApi(export), FakePinpoint()
    fake.merge_patch(f"{fake.path}/status", {"status": state_tests.exporting()})
    pinpoint.jobs.append({"Id": "job1", "JobStatus": "PROCESSING"})
    replica = Replica(fake, pinpoint)
    replica.aws.waiting.append(lambda: time.sleep(took))  # the first poll's wait for a place

    async def wait(delay: float, *_: Any) -> None:
        waits.append(delay)
        pinpoint.jobs[0]["JobStatus"] = "FAILED"  # the next poll ends the run

    waits: list[float] = []
    monkeypatch.setattr(reconciler_module, "wait_for_wakeup", wait)
    asyncio.run(replica.reconciler.run(fake.get(fake.path), NeverStopped(), Logger()))  # type: ignore[arg-type]
    assert fake.objects[fake.path]["status"]["phase"] == "Failed"
    assert len(waits) == 1
    assert 0 < waits[0] <= interval - took


def test_copy_jobs_are_created_on_threads_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not queued behind the other Kubernetes calls."""
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    fake.merge_patch(f"{fake.path}/status", {"status": state_tests.exporting()})
    pinpoint.jobs.append({"Id": "job1", "JobStatus": "COMPLETED"})
    copy_jobs = ThreadPoolExecutor(1, thread_name_prefix="copy-jobs")
    reconciler = ExportReconciler(
        Kube(fake), FakeAws(pinpoint), ExportDefaults(), Wakeups(), copy_jobs
    )  # type: ignore[arg-type]

    async def wait(*_: Any) -> None:
        fake.objects[job_path(export)]["status"] = copy_job(export, False, "Complete")["status"]

    monkeypatch.setattr(reconciler_module, "wait_for_wakeup", wait)
    asyncio.run(reconciler.run(fake.get(fake.path), NeverStopped(), Logger()))  # type: ignore[arg-type]
    reconciler.close()
    assert f"create {namespaced('batch/v1', export.namespace, 'jobs')}/nightly-copy" in fake.writes
    assert fake.created_on.startswith("copy-jobs")
    assert fake.objects[fake.path]["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(("again", "observed"), [(False, 1), (True, 0)], ids=["first", "again"])
def test_only_the_first_copy_job_times_the_operator_from_completed(
    again: bool, observed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy Job made again after the first went missing comes hours after COMPLETED: not a
    delay of the operator's, so not in the histogram its 7 s target is read from."""
    export = make_export()
    fake, pinpoint = FakeApi(export), FakePinpoint()
    status = state_tests.exporting()
    if again:
        status["copyJob"] = {"name": "nightly-copy"}
    fake.merge_patch(f"{fake.path}/status", {"status": status})
    pinpoint.jobs.append({"Id": "job1", "JobStatus": "COMPLETED", "CompletionDate": clock.now()})
    reconciler = ExportReconciler(Kube(fake), FakeAws(pinpoint), ExportDefaults(), Wakeups())  # type: ignore[arg-type]

    async def wait(*_: Any) -> None:
        fake.objects[job_path(export)]["status"] = copy_job(export, False, "Complete")["status"]

    def timed() -> float:
        name = "pinpoint_export_since_completion_seconds_count"
        return metrics.REGISTRY.get_sample_value(name, {"step": "copy_job"}) or 0.0

    before = timed()
    monkeypatch.setattr(reconciler_module, "wait_for_wakeup", wait)
    asyncio.run(reconciler.run(fake.get(fake.path), NeverStopped(), Logger()))  # type: ignore[arg-type]
    assert fake.objects[fake.path]["status"]["phase"] == "Succeeded"
    assert timed() - before == observed


def test_the_daemon_writes_the_result_of_a_copy_job_being_deleted_then_lets_it_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its TTL deleted the Job (pods first, summary with them) while no operator ran: the
    export succeeds by the Job's condition, and only then may the Job go; it is not made
    again."""
    export = make_export()
    fake = FakeApi(export)
    copying(fake)
    fake.objects[job_path(export)] = copy_job(export, True, "Complete")
    reconciler = Replica(fake, FakePinpoint()).reconciler
    waits = run_daemon(reconciler, fake, monkeypatch)
    assert waits == []  # gone once the result is written, before Kopf sees it
    status = fake.objects[fake.path]["status"]
    assert status["phase"] == "Succeeded"
    assert "the copier's summary (files, bytes) was lost with its pods" in status["message"]
    assert "files" not in status["output"]
    assert fake.writes == ["status", f"finalizers {job_path(export)}"]  # result first
    assert fake.objects[job_path(export)]["metadata"]["finalizers"] == ["foregroundDeletion"]


@pytest.mark.parametrize(
    ("export_status", "released"),
    [
        ({"phase": "Copying"}, False),  # its daemon has yet to read the result
        ({"phase": "Succeeded", "copyJob": {"name": "nightly-copy"}}, True),  # recorded
        (None, True),  # the export is gone
        ("deleting", True),  # the export is being deleted: its daemon stops
        ("replaced", True),  # an export of the same name, not the Job's controller
    ],
)
def test_the_copy_job_handler_lets_go_of_a_job_being_deleted_whose_result_is_done_with(
    export_status: Any, released: bool
) -> None:
    export = make_export()
    fake = FakeApi(export)
    obj = fake.objects[fake.path]
    if export_status is None:
        del fake.objects[fake.path]
    elif export_status == "deleting":
        obj["metadata"]["deletionTimestamp"] = T0
    elif export_status == "replaced":
        obj["metadata"]["uid"] = "another"
    else:
        obj["status"] = export_status
    job = copy_job(export, True, "Complete")
    fake.objects[job_path(export)] = copy.deepcopy(job)
    reconciler = ExportReconciler(Kube(fake), FakeAws(FakePinpoint()), ExportDefaults(), Wakeups())  # type: ignore[arg-type]
    asyncio.run(reconciler.copy_job_seen("MODIFIED", kopf.Body(job), Logger()))
    kept = api.COPY_JOB_FINALIZER in fake.objects[job_path(export)]["metadata"]["finalizers"]
    assert kept is not released
    assert all(not write.startswith("create") for write in fake.writes)


def test_the_copy_job_handler_leaves_a_job_not_being_deleted_alone() -> None:
    export = make_export()
    fake = FakeApi(export)
    reconciler = ExportReconciler(Kube(fake), FakeAws(FakePinpoint()), ExportDefaults(), Wakeups())  # type: ignore[arg-type]
    job = copy_job(export, False, "Complete")
    asyncio.run(reconciler.copy_job_seen("MODIFIED", kopf.Body(job), Logger()))
    assert fake.writes == []


def test_a_copy_job_name_taken_by_another_owner_fails_the_export() -> None:
    export = make_export()
    fake = FakeApi(export)
    fake.merge_patch(f"{fake.path}/status", {"status": state_tests.exporting("COMPLETED")})
    foreign = copy_job(export, False)
    foreign["metadata"]["ownerReferences"] = [{"uid": "someone-else", "controller": True}]
    fake.objects[job_path(export)] = foreign
    outcome = Replica(fake, FakePinpoint()).step()
    assert outcome is not None and outcome.status["phase"] == "Failed"
    assert reason(outcome) == "CopyJobNameTaken"
    assert (
        f"Job {api.copy_job_name(export.name)} exists and is not this export's"
        in (outcome.status["message"])
    )
    assert fake.objects[job_path(export)] == foreign  # left as it was


def test_a_misspelt_service_account_is_named_before_pinpoint_runs() -> None:
    export = make_export(copy={"serviceAccountName": "copier-typo"})
    fake, pinpoint = FakeApi(export), FakePinpoint()
    fake.add("serviceaccounts", "copier")  # what was meant
    replica = Replica(fake, pinpoint)
    replica.start()
    outcome = replica.step()
    assert reason(outcome) == "ServiceAccountNotFound"
    assert outcome is not None and outcome.status["phase"] == "Pending"
    assert outcome.retry  # GitOps may create it a moment later
    assert (
        "spec.copy.serviceAccountName: serviceaccount marketing/copier-typo not found"
        in (outcome.status["message"])
    )
    assert pinpoint.jobs == [] and pinpoint.listings == []
