"""Fixtures for the operator's end-to-end tests: CRDs installed, the operator running."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_operator.runtime import timestamps
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.s3server import S3Credentials
from pinpoint_export_sandbox.stack import SandboxEnv
from pinpoint_export_sandbox.testing import Kubectl

from .operator_process import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "pinpoint-exports"
ROLE_ARN = "arn:aws:iam::123456789012:role/PinpointExportToS3"


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    """The project's CRDs, installed and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))


@pytest.fixture(scope="session")
def emulator(sandbox: SandboxEnv) -> EmulatorAdmin:
    return EmulatorAdmin(sandbox.pinpoint_url)


@pytest.fixture(scope="session")
def bucket(s3: S3Credentials) -> str:
    s3_client = s3.client()
    if BUCKET not in [b["Name"] for b in s3_client.list_buckets().get("Buckets", [])]:
        s3_client.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture(scope="session")
def operator(
    sandbox: SandboxEnv, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator for the session; tests that kill it start it again."""
    running = OperatorProcess(sandbox, tmp_path_factory.mktemp("operator") / "operator.log")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def session_operator_stopped(operator: OperatorProcess) -> Iterator[None]:
    """Stop the session's operator (it watches every namespace) while a module runs operators
    of its own; start it again after (once per module: it takes seconds on a busy machine)."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


def exported_ids(run_dir: Path) -> list[str]:
    """Every endpoint id in a run's files, as many times as it appears."""
    ids = []
    for piece in sorted(run_dir.rglob("*.gz")):
        with gzip.open(piece, "rt") as lines:
            ids += [json.loads(line)["Id"] for line in lines if line.strip()]
    return ids


@pytest.fixture
def credentials_secret(api: client.ApiClient, namespace: str, s3: S3Credentials) -> str:
    """A Secret with the sandbox's keys, as a user would create for spec.credentials."""
    name = "pinpoint-credentials"
    data = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    client.CoreV1Api(api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        ),
    )
    return name


def export_manifest(name: str, application_id: str, **spec: Any) -> dict[str, Any]:
    """The README's example export, pointed at the sandbox's app."""
    manifest: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "pinpointexport.yaml").read_text()
    )
    manifest["metadata"] = {"name": name}
    manifest["spec"].update(applicationId=application_id, roleArn=ROLE_ARN, **spec)
    manifest["spec"]["s3UrlPrefix"] = f"s3://{BUCKET}/endpoints/"
    manifest["spec"]["pollIntervalSeconds"] = spec.get("pollIntervalSeconds", 1)
    return manifest


def read_export(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.EXPORTS, name
    )
    assert isinstance(obj, dict)
    return obj


def wait_phase(
    api: client.ApiClient, namespace: str, name: str, phases: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        export = read_export(api, namespace, name)
        return export if export.get("status", {}).get("phase") in phases else None

    return process.wait_for(reached, timeout, f"{namespace}/{name} in {phases}", interval=0.2)


@dataclass
class Exports:
    """A namespace ready for PinpointExports: operator running, app, claim, Secret, bucket."""

    api: client.ApiClient
    namespace: str
    kubectl: Kubectl
    app: str
    volume: Path  # the host directory behind the `exports` claim

    def apply(self, name: str, **spec: Any) -> dict[str, Any]:
        manifest = export_manifest(name, self.app, **spec)
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(manifest))
        return read_export(self.api, self.namespace, name)

    def read(self, name: str) -> dict[str, Any]:
        return read_export(self.api, self.namespace, name)

    def wait(self, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for one of `phases` (default: either end) and return the object."""
        return wait_phase(
            self.api, self.namespace, name, phases or ("Succeeded", "Failed"), timeout
        )

    def event_reasons(self, name: str) -> set[str]:
        events = client.CoreV1Api(self.api).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return {e.reason for e in events.items}

    def run_prefix(self, name: str) -> tuple[str, str]:
        """The run id and S3 prefix the operator derives for export `name`."""
        meta = self.read(name)["metadata"]
        run = names.run_id(timestamps.parse(meta["creationTimestamp"]), meta["uid"])
        return run, names.run_prefix(f"s3://{BUCKET}/endpoints/", self.namespace, name, run)

    def resume_as_pending(
        self, name: str, claimed_by: str | None = None, seconds_ago: float = 0
    ) -> str:
        """Write the status a dead operator would have left: the run recorded, a create
        claimed (or not, as an earlier version left it), nothing more. The run's prefix."""
        run, prefix = self.run_prefix(name)
        job: dict[str, Any] = {"s3Url": prefix}
        if claimed_by is not None:
            at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
            job.update(requestedBy=claimed_by, requestedAt=timestamps.format(at))
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            names.GROUP,
            names.VERSION,
            self.namespace,
            names.EXPORTS,
            name,
            {"status": {"phase": "Pending", "runId": run, "exportJob": job}},
        )
        return prefix


@pytest.fixture
def exports(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: OperatorProcess,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> Exports:
    return Exports(api, namespace, kubectl, emulator.create_app(), bound_claim("exports"))
