"""PinpointExport when things go wrong: failed jobs, a killed operator, a flaky service."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.s3server import S3Credentials

from .conftest import ROLE_ARN, Exports
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorAdmin) -> Iterator[None]:
    emulator.reset(state=False)
    yield
    emulator.reset(state=False)


def condition(export: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in export["status"]["conditions"] if c["type"] == type_)


def pinpoint_client(url: str) -> Any:
    """An unmodified boto3 client; the emulator takes any signed request."""
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_failed_pinpoint_job_is_terminal(exports: Exports, emulator: EmulatorAdmin) -> None:
    emulator.seed(exports.app, 50)
    emulator.set_faults(fail_jobs=1)
    exports.apply("doomed")

    export = exports.wait("doomed")

    status = export["status"]
    assert status["phase"] == "Failed"
    assert status["exportJob"]["jobStatus"] == "FAILED"
    stalled = condition(export, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "PinpointJobFailed")
    failures = status["exportJob"].get("failures") or []
    assert failures and failures[0] in status["message"]
    assert condition(export, "Ready")["status"] == "False"
    # No copy Job, no second Pinpoint job, and the daemon has let go (no finalizer).
    assert client.BatchV1Api(exports.api).list_namespaced_job(exports.namespace).items == []
    assert emulator.counters().get("CreateExportJob") == 1
    process.wait_for(
        lambda: not exports.read("doomed")["metadata"].get("finalizers"), 30, "finalizer released"
    )


def test_deleted_while_its_daemon_waits_on_pinpoint_is_released(
    exports: Exports, emulator: EmulatorAdmin
) -> None:
    """The daemon is inside a slow GetExportJob when the export is deleted, and stops without
    anything to write: the finalizer is still released (Kopf wakes itself by writing to
    status.kopf, which the schema must keep, or the object stays Terminating for good)."""
    emulator.seed(exports.app, 20)
    emulator.set_faults(freeze_status="PROCESSING")
    exports.apply("slow-to-stop")
    exports.wait("slow-to-stop", "Exporting", timeout=60)
    emulator.set_faults(freeze_status="PROCESSING", latency_seconds=8, operations=["GetExportJob"])
    polls = emulator.counters().get("GetExportJob", 0)
    process.wait_for(
        lambda: emulator.counters().get("GetExportJob", 0) > polls, 30, "a slow poll under way"
    )
    exports.kubectl("delete", "-n", exports.namespace, "ppe/slow-to-stop", "--wait=false")
    custom = client.CustomObjectsApi(exports.api)
    process.wait_for(
        lambda: (
            not custom.list_namespaced_custom_object(
                names.GROUP, names.VERSION, exports.namespace, names.EXPORTS
            )["items"]
        ),
        60,
        "the deleted export gone",
    )


def test_missing_application_fails_with_a_reason(exports: Exports) -> None:
    dataclasses.replace(exports, app="f" * 32).apply("no-app")
    export = exports.wait("no-app")
    assert export["status"]["phase"] == "Failed"
    assert condition(export, "Stalled")["reason"] == "NotFound"


def test_crash_after_creating_the_job_adopts_it(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess
) -> None:
    """The operator dies after CreateExportJob and before recording the job id."""
    emulator.seed(exports.app, 100)
    operator.kill()
    try:
        exports.apply("crashy")
        # What the dead incarnation (an earlier version, which claimed nothing) did: recorded
        # the run, created the job, recorded nothing more.
        _, prefix = exports.run_prefix("crashy")
        pinpoint_client(emulator.url).create_export_job(
            ApplicationId=exports.app,
            ExportJobRequest={"RoleArn": ROLE_ARN, "S3UrlPrefix": prefix},
        )
        exports.resume_as_pending("crashy")
    finally:
        operator.start()

    assert exports.wait("crashy")["status"]["phase"] == "Succeeded"
    assert emulator.counters().get("CreateExportJob") == 1
    assert "ExportJobAdopted" in exports.event_reasons("crashy")


def test_killed_at_any_point_creates_one_job_and_succeeds(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess
) -> None:
    """SIGKILL right after Pinpoint saw the create call, and again while polling."""
    emulator.seed(exports.app, 100)
    emulator.set_faults(freeze_status="PROCESSING")
    exports.apply("killed")
    process.wait_for(
        lambda: emulator.counters().get("CreateExportJob") == 1, 60, "CreateExportJob called"
    )
    operator.kill()
    operator.start()
    exports.wait("killed", "Exporting")
    process.wait_for(
        lambda: emulator.counters().get("GetExportJob", 0) >= 1, 60, "polling after restart"
    )
    operator.kill()
    emulator.set_faults()  # the job goes on while the operator is down
    operator.start()

    export = exports.wait("killed", timeout=240)
    assert export["status"]["phase"] == "Succeeded"
    # Jobs made, not requests received: a request cut off by the kill may have made nothing.
    assert len(emulator.jobs(exports.app, export["status"]["exportJob"]["s3Url"])) == 1


def test_throttling_and_server_errors_are_retried(
    exports: Exports, emulator: EmulatorAdmin
) -> None:
    emulator.seed(exports.app, 100)
    emulator.set_faults(throttle_rate=0.3, error_rate=0.1, seed=7)
    names_ = [f"flaky-{i}" for i in range(3)]
    for name in names_:
        exports.apply(name)

    for name in names_:
        export = exports.wait(name, timeout=240)
        assert export["status"]["phase"] == "Succeeded", export["status"]
    counters = emulator.counters()
    emulator.set_faults()
    # One Pinpoint job per export, whatever was retried.
    jobs = pinpoint_client(emulator.url).get_export_jobs(ApplicationId=exports.app, PageSize="100")
    assert len(jobs["ExportJobsResponse"]["Item"]) == len(names_)
    # Bounded calls: two attempts per call at most, a handful of polls per export.
    assert counters.get("CreateExportJob", 0) <= 2 * 2 * len(names_)
    assert sum(counters.values()) <= 60 * len(names_), counters


@pytest.mark.parametrize(
    ("copy", "expected"),
    [
        ({"nodeSelector": {"bad key!": "x"}}, "nodeSelector"),
        (
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
            "must be less than or equal to cpu limit",
        ),
    ],
)
def test_a_copy_job_kubernetes_would_refuse_fails_before_pinpoint_runs(
    exports: Exports, emulator: EmulatorAdmin, copy: dict[str, Any], expected: str
) -> None:
    emulator.seed(exports.app, 10)
    exports.apply("refused", copy=copy)
    export = exports.wait("refused")
    assert export["status"]["phase"] == "Failed"
    assert condition(export, "Stalled")["reason"] == "CopyJobInvalid"
    assert expected in export["status"]["message"]
    assert emulator.counters().get("CreateExportJob", 0) == 0


def test_a_missing_claim_is_waited_for_before_pinpoint_runs(
    exports: Exports, emulator: EmulatorAdmin, bound_claim: Any
) -> None:
    emulator.seed(exports.app, 10)
    exports.apply("early", destination={"claimName": "later", "path": "x"})
    waiting = process.wait_for(
        lambda: (
            (s := exports.read("early").get("status", {})).get("message", "").count("later") and s
        ),
        60,
        "the export waiting for its claim",
    )
    assert waiting["phase"] == "Pending"
    assert "spec.destination.claimName" in waiting["message"]
    assert emulator.counters().get("CreateExportJob", 0) == 0
    bound_claim("later")  # GitOps creates it a moment later
    assert exports.wait("early", timeout=180)["status"]["phase"] == "Succeeded"


def test_a_misspelt_service_account_is_named_before_pinpoint_runs(
    exports: Exports, emulator: EmulatorAdmin
) -> None:
    emulator.seed(exports.app, 10)
    exports.apply("typo", copy={"serviceAccountName": "copier-typo"})
    waiting = process.wait_for(
        lambda: (
            (s := exports.read("typo").get("status", {})).get("message", "").count("copier-typo")
            and s
        ),
        60,
        "the export naming the missing ServiceAccount",
    )
    assert waiting["phase"] == "Pending"
    assert "spec.copy.serviceAccountName" in waiting["message"]
    assert condition(exports.read("typo"), "Reconciling")["reason"] == "ServiceAccountNotFound"
    assert emulator.counters().get("CreateExportJob", 0) == 0


def replace_secret(exports: Exports, data: dict[str, bytes]) -> None:
    core = client.CoreV1Api(exports.api)
    secret = core.read_namespaced_secret("pinpoint-credentials", exports.namespace)
    secret.data = {k: base64.b64encode(v).decode() for k, v in data.items()}
    core.replace_namespaced_secret("pinpoint-credentials", exports.namespace, secret)


def test_keys_with_a_trailing_newline_work(exports: Exports, s3: S3Credentials) -> None:
    """`echo $KEY | kubectl create secret ...` leaves a newline: stripped, not fatal."""
    replace_secret(
        exports,
        {
            "AWS_ACCESS_KEY_ID": s3.access_key.encode() + b"\n",
            "AWS_SECRET_ACCESS_KEY": s3.secret_key.encode() + b"\n",
        },
    )
    exports.apply("newline")
    export = exports.wait("newline", timeout=180)
    assert export["status"]["phase"] == "Succeeded", export["status"]


def test_a_binary_secret_value_is_named_and_never_shown(
    exports: Exports, s3: S3Credentials, operator: OperatorProcess
) -> None:
    garbage = b"\xff\xfe\x00GARBAGE-\x9f\x80"
    replace_secret(
        exports, {"AWS_ACCESS_KEY_ID": s3.access_key.encode(), "AWS_SECRET_ACCESS_KEY": garbage}
    )
    exports.apply("binary")
    export = exports.wait("binary")
    assert export["status"]["phase"] == "Failed"
    assert condition(export, "Stalled")["reason"] == "InvalidCredentialsSecret"
    assert "AWS_SECRET_ACCESS_KEY" in export["status"]["message"]
    # The Warning is posted after the status: read the Events once it is among them.
    process.wait_for(
        lambda: "InvalidCredentialsSecret" in exports.event_reasons("binary"), 30, "the Warning"
    )
    events = client.CoreV1Api(exports.api).list_namespaced_event(exports.namespace)
    told = json.dumps(export["status"]) + " ".join(e.message or "" for e in events.items)
    told += operator.log.read_text(errors="replace")
    for fragment in ("GARBAGE", repr(garbage), "\\xff\\xfe"):
        assert fragment not in told


def test_a_copy_job_deleted_before_its_result_was_read_changes_nothing(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess
) -> None:
    """Deleted (as its TTL does: in the foreground, its pods first) while the operator was
    down: its finalizer keeps the Job until the restarted operator has read it. The export
    succeeds by the Job's condition, then the Job goes and is not made again: same files,
    `latest` where it was, no second Pinpoint job."""
    emulator.seed(exports.app, 100)
    exports.apply("ttl")
    process.wait_for(
        lambda: exports.read("ttl").get("status", {}).get("phase") == "Copying", 120, "copying"
    )
    operator.kill()
    batch = client.BatchV1Api(exports.api)
    core = client.CoreV1Api(exports.api)
    try:
        job = exports.read("ttl")["status"]["copyJob"]["name"]
        process.wait_for(
            lambda: (batch.read_namespaced_job(job, exports.namespace).status.succeeded or 0) >= 1,
            120,
            "the copy Job done",
        )
        uid = batch.read_namespaced_job(job, exports.namespace).metadata.uid
        run_dir = exports.volume / "marketing/nightly"
        manifest = next(run_dir.glob("*/manifest.json"))
        before = manifest.read_bytes()
        creates = emulator.counters().get("CreateExportJob")
        batch.delete_namespaced_job(job, exports.namespace, propagation_policy="Foreground")
        process.wait_for(
            lambda: (
                not core.list_namespaced_pod(
                    exports.namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
                ).items
            ),
            60,
            "the copy Job's pods gone",
        )
        held = batch.read_namespaced_job(job, exports.namespace).metadata
        assert (held.uid, bool(held.deletion_timestamp)) == (uid, True)
        assert names.COPY_JOB_FINALIZER in held.finalizers
    finally:
        operator.start()
    export = exports.wait("ttl", timeout=180)
    status = export["status"]
    assert status["phase"] == "Succeeded", status
    assert status["copyJob"]["name"] == job
    assert "the copier's summary (files, bytes) was lost with its pods" in status["message"]

    def jobs_named() -> list[Any]:
        return [
            j for j in batch.list_namespaced_job(exports.namespace).items if j.metadata.name == job
        ]

    process.wait_for(lambda: not jobs_named(), 60, "the copy Job gone once its result was read")
    # Not made again: the export's handling has ended (its finalizer is gone) without it.
    process.wait_for(
        lambda: not exports.read("ttl")["metadata"].get("finalizers"), 30, "the export released"
    )
    assert not jobs_named()
    assert emulator.counters().get("CreateExportJob") == creates == 1
    assert manifest.read_bytes() == before
    assert (run_dir / "latest").resolve() == manifest.parent.resolve()
