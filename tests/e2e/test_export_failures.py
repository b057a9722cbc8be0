"""PinpointExport when things go wrong: failed jobs, a killed operator, a flaky service."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import BUCKET, ROLE_ARN, Exports
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorAdmin) -> Iterator[None]:
    emulator.reset(state=False)
    yield
    emulator.reset(state=False)


def condition(export: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in export["status"]["conditions"] if c["type"] == type_)


def event_reasons(exports: Exports, name: str) -> set[str]:
    events = client.CoreV1Api(exports.api).list_namespaced_event(
        exports.namespace, field_selector=f"involvedObject.name={name}"
    )
    return {e.reason for e in events.items}


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
        meta = exports.apply("crashy")["metadata"]
        run = names.run_id(timestamps.parse(meta["creationTimestamp"]), meta["uid"])
        prefix = names.run_prefix(f"s3://{BUCKET}/endpoints/", exports.namespace, "crashy", run)
        # What the dead incarnation did: recorded the run, created the job, recorded nothing more.
        pinpoint_client(emulator.url).create_export_job(
            ApplicationId=exports.app,
            ExportJobRequest={"RoleArn": ROLE_ARN, "S3UrlPrefix": prefix},
        )
        client.CustomObjectsApi(exports.api).patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            exports.namespace,
            names.EXPORTS,
            "crashy",
            {"status": {"phase": "Pending", "runId": run, "exportJob": {"s3Url": prefix}}},
        )
    finally:
        operator.start()

    assert exports.wait("crashy")["status"]["phase"] == "Succeeded"
    assert emulator.counters().get("CreateExportJob") == 1
    assert "ExportJobAdopted" in event_reasons(exports, "crashy")


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

    assert exports.wait("killed")["status"]["phase"] == "Succeeded"
    assert emulator.counters().get("CreateExportJob") == 1


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
