"""PinpointExport when things go wrong: failed jobs, a killed operator, a flaky service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_operator.sandbox import process
from pinpoint_export_operator.sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_operator.sandbox.stack import SandboxEnv

from .conftest import ROLE_ARN, Kubectl, export_manifest, read_export, wait_phase
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorAdmin) -> Iterator[None]:
    emulator.reset(state=False)
    yield
    emulator.reset(state=False)


def apply_export(kubectl: Kubectl, namespace: str, manifest: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def condition(export: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in export["status"]["conditions"] if c["type"] == type_)


def test_failed_pinpoint_job_is_terminal(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    app = emulator.create_app()
    emulator.seed(app, 50)
    bound_claim("exports")
    emulator.set_faults(fail_jobs=1)
    apply_export(kubectl, namespace, export_manifest("doomed", app))

    export = wait_phase(api, namespace, "doomed", ("Failed", "Succeeded"))

    status = export["status"]
    assert status["phase"] == "Failed"
    assert status["exportJob"]["jobStatus"] == "FAILED"
    stalled = condition(export, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "PinpointJobFailed")
    failures = status["exportJob"].get("failures") or []
    assert failures and failures[0] in status["message"]
    assert condition(export, "Ready")["status"] == "False"
    # No copy Job, no second Pinpoint job, and the daemon has let go (no finalizer).
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace)
    assert jobs.items == []
    assert emulator.counters().get("CreateExportJob") == 1
    process.wait_for(
        lambda: not read_export(api, namespace, "doomed")["metadata"].get("finalizers"),
        30,
        "finalizer released",
    )


def test_missing_application_fails_with_a_reason(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    bucket: str,
    credentials_secret: str,
) -> None:
    apply_export(kubectl, namespace, export_manifest("no-app", "f" * 32))
    export = wait_phase(api, namespace, "no-app", ("Failed", "Succeeded"))
    assert export["status"]["phase"] == "Failed"
    assert condition(export, "Stalled")["reason"] == "NotFound"


def pinpoint_client(url: str) -> Any:
    """An unmodified boto3 client; the emulator takes any signed request."""
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_crash_after_creating_the_job_adopts_it(
    api: client.ApiClient,
    sandbox: SandboxEnv,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    """The operator dies after CreateExportJob and before recording the job id."""
    app = emulator.create_app()
    emulator.seed(app, 100)
    bound_claim("exports")
    operator.kill()
    try:
        apply_export(kubectl, namespace, export_manifest("crashy", app))
        export = read_export(api, namespace, "crashy")
        meta = export["metadata"]
        run = names.run_id(meta["creationTimestamp"], meta["uid"])
        prefix = names.run_prefix(f"s3://{bucket}/endpoints/", namespace, "crashy", run)
        # What the dead incarnation did: recorded the run, created the job, recorded nothing more.
        pinpoint_client(sandbox.pinpoint_url).create_export_job(
            ApplicationId=app, ExportJobRequest={"RoleArn": ROLE_ARN, "S3UrlPrefix": prefix}
        )
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            namespace,
            names.EXPORTS,
            "crashy",
            {"status": {"phase": "Pending", "runId": run, "exportJob": {"s3Url": prefix}}},
        )
    finally:
        operator.start()

    export = wait_phase(api, namespace, "crashy", ("Succeeded", "Failed"))
    assert export["status"]["phase"] == "Succeeded"
    assert emulator.counters().get("CreateExportJob") == 1
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector="involvedObject.name=crashy"
    )
    assert "ExportJobAdopted" in {e.reason for e in events.items}


def test_killed_at_any_point_creates_one_job_and_succeeds(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    """SIGKILL right after Pinpoint saw the create call, and again while polling."""
    app = emulator.create_app()
    emulator.seed(app, 100)
    bound_claim("exports")
    emulator.set_faults(freeze_status="PROCESSING")
    apply_export(kubectl, namespace, export_manifest("killed", app))
    process.wait_for(
        lambda: emulator.counters().get("CreateExportJob") == 1, 60, "CreateExportJob called"
    )
    operator.kill()
    operator.start()
    wait_phase(api, namespace, "killed", ("Exporting",))
    process.wait_for(
        lambda: emulator.counters().get("GetExportJob", 0) >= 1, 60, "polling after restart"
    )
    operator.kill()
    emulator.set_faults()  # the job goes on while the operator is down
    operator.start()

    export = wait_phase(api, namespace, "killed", ("Succeeded", "Failed"))
    assert export["status"]["phase"] == "Succeeded"
    assert emulator.counters().get("CreateExportJob") == 1


def test_throttling_and_server_errors_are_retried(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    app = emulator.create_app()
    emulator.seed(app, 100)
    bound_claim("exports")
    emulator.set_faults(throttle_rate=0.3, error_rate=0.1, seed=7)
    exports = [f"flaky-{i}" for i in range(3)]
    for name in exports:
        apply_export(kubectl, namespace, export_manifest(name, app))

    for name in exports:
        export = wait_phase(api, namespace, name, ("Succeeded", "Failed"), timeout=240)
        assert export["status"]["phase"] == "Succeeded", export["status"]
    counters = emulator.counters()
    emulator.set_faults()
    # One Pinpoint job per export, whatever was retried.
    jobs = pinpoint_client(emulator.url).get_export_jobs(ApplicationId=app, PageSize="100")
    assert len(jobs["ExportJobsResponse"]["Item"]) == len(exports)
    # Bounded calls: two attempts per call at most, a handful of polls per export.
    assert counters.get("CreateExportJob", 0) <= 2 * 2 * len(exports)
    assert sum(counters.values()) <= 60 * len(exports), counters
