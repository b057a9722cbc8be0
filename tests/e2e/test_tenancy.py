"""Tenancy on the sandbox: the role mapping, AssumeRole as STS records it, copy pods shaped.

Each test runs its own operator (flags of its own, watching only the test's namespace) while
the session's operator is stopped. Base identities are made-up keys that only the emulator's
STS takes (it checks no signature): the Pinpoint emulator and the S3 server are reached with the
keys AssumeRole hands out (the S3 server's own), so an export that succeeds went through STS.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import pki, process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.stack import SandboxEnv
from pinpoint_export_sandbox.testing import Kubectl

from .conftest import ROLE_ARN, Exports, export_manifest
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

TENANT_ROLE = "arn:aws:iam::210987654321:role/tenant-exporter"
EXTERNAL_ID = "tenant-a:7f3c/2026"
OPERATOR_KEY = "AKIAOPERATORBASE0001"
COPIER_KEY = "AKIACOPIERBASE000001"
StartOperator = Callable[..., OperatorProcess]
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorAdmin) -> Iterator[None]:
    emulator.reset(state=False)
    yield
    emulator.reset(state=False)


@pytest.fixture
def tenant_operator(
    sandbox: SandboxEnv,
    namespace: str,
    tmp_path: Path,
    session_operator_stopped: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StartOperator]:
    """Start an operator for the test's namespace with extra flags; stopped after the test.

    Its own identity (for AssumeRole) is a shared credentials file: OperatorProcess removes
    the keys from the environment."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {OPERATOR_KEY}\naws_secret_access_key = base\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    started: list[OperatorProcess] = []

    def start(*flags: str) -> OperatorProcess:
        running = OperatorProcess(
            sandbox, tmp_path / "operator.log", f"--namespaces={namespace}", *flags
        )
        started.append(running)
        running.start()
        return running

    yield start
    for running in started:
        running.stop()


class _InjectIdentity(BaseHTTPRequestHandler):
    """What EKS Pod Identity's or IRSA's webhook does for a pod, with static keys."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        pod = review["request"]["object"]
        identity = [
            {"name": "AWS_ACCESS_KEY_ID", "value": COPIER_KEY},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "base"},
        ]
        patch = []
        for index, container in enumerate(pod["spec"]["containers"]):
            if container.get("env"):
                at = f"/spec/containers/{index}/env/-"
                patch += [{"op": "add", "path": at, "value": var} for var in identity]
            else:
                patch.append(
                    {"op": "add", "path": f"/spec/containers/{index}/env", "value": identity}
                )
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
            },
        }
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def copier_base_identity(api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[None]:
    """A mutating webhook giving the namespace's copy pods a base identity to assume from."""
    authority = pki.CertificateAuthority(tmp_path / "webhook-pki")
    serving = authority.issue("webhook", "127.0.0.1", server=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(serving.cert, serving.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _InjectIdentity)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="identity-webhook", daemon=True)
    thread.start()
    admission = client.AdmissionregistrationV1Api(api)
    name = f"ppe-e2e-identity-{namespace}"
    selector = {names.LABEL_MANAGED_BY: names.MANAGER}
    webhook = {
        "name": "identity.e2e.pinpoint.exports.dev",
        "clientConfig": {
            "url": f"https://127.0.0.1:{server.server_address[1]}/mutate",
            "caBundle": base64.b64encode(authority.cert.read_bytes()).decode(),
        },
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "objectSelector": {"matchLabels": selector},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
    }
    admission.create_mutating_webhook_configuration(
        {"metadata": {"name": name}, "webhooks": [webhook]}
    )
    try:
        probe = {
            "metadata": {"generateName": "identity-probe-", "labels": selector},
            "spec": {"containers": [{"name": "probe", "image": "probe"}]},
        }

        def injected() -> bool:
            pod = client.CoreV1Api(api).create_namespaced_pod(namespace, probe, dry_run="All")
            return any(var.name == "AWS_ACCESS_KEY_ID" for var in pod.spec.containers[0].env or [])

        process.wait_for(injected, 30, "the identity webhook in effect", interval=0.2)
        yield
    finally:
        admission.delete_mutating_webhook_configuration(name)
        server.shutdown()
        server.server_close()


def condition(export: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in export["status"]["conditions"] if c["type"] == type_)


def assert_failed_with(export: dict[str, Any], reason: str, message: str) -> None:
    status = export["status"]
    assert status["phase"] == "Failed"
    assert (condition(export, "Stalled")["reason"], status["message"]) == (reason, message)


def assert_nothing_reached_aws(exports: Exports, emulator: EmulatorAdmin) -> None:
    """No Pinpoint call at all, no AssumeRole, no job, no copy Job."""
    assert "CreateExportJob" not in emulator.counters()
    assert emulator.counters() == {}
    assert emulator.sts_calls() == []
    assert emulator.jobs(exports.app) == []
    assert client.BatchV1Api(exports.api).list_namespaced_job(exports.namespace).items == []


def test_a_namespace_outside_the_role_mapping_is_refused_before_any_aws_call(
    exports: Exports, emulator: EmulatorAdmin, tenant_operator: StartOperator
) -> None:
    tenant_operator("--allowed-roles=elsewhere=arn:aws:iam::*:role/*")
    exports.apply("passes-a-role")
    exports.apply(
        "assumes-a-role",
        credentials={"assumeRoleArn": TENANT_ROLE, "externalId": EXTERNAL_ID},
    )
    for name, field in (
        ("passes-a-role", f"spec.roleArn '{ROLE_ARN}'"),
        ("assumes-a-role", f"spec.credentials.assumeRoleArn '{TENANT_ROLE}'"),
    ):
        export = exports.wait(name)
        assert_failed_with(
            export,
            "RoleNotAllowed",
            f"{field} is not allowed in namespace '{exports.namespace}': "
            "the operator's --allowed-roles has no rule for it",
        )
        process.wait_for(  # posted just after the status is written
            lambda name=name: "RoleNotAllowed" in exports.event_reasons(name),
            30,
            f"{name}'s Event",
        )
        assert "id" not in export["status"].get("exportJob", {})
    assert_nothing_reached_aws(exports, emulator)


def test_a_copier_image_outside_the_allowed_ones_is_refused_before_any_aws_call(
    exports: Exports, emulator: EmulatorAdmin, tenant_operator: StartOperator
) -> None:
    """A prefix admits images under it at a path boundary, never a registry whose name only
    begins the same way."""
    tenant_operator("--allowed-copier-images=registry.corp")
    image = "registry.corp.evil.io/copier:1"
    exports.apply("own-image", copy={"image": image})
    assert_failed_with(
        exports.wait("own-image"),
        "CopierImageNotAllowed",
        f"spec.copy.image '{image}' is not allowed by the operator "
        "(--allowed-copier-images: registry.corp)",
    )
    assert_nothing_reached_aws(exports, emulator)


def test_external_id_session_name_and_tags_reach_sts_from_the_operator_and_the_copier(
    exports: Exports,
    emulator: EmulatorAdmin,
    tenant_operator: StartOperator,
    copier_base_identity: None,
) -> None:
    namespace = exports.namespace
    rules = [f"{namespace}={ROLE_ARN}", f"{namespace}=arn:aws:iam::210987654321:role/tenant-*"]
    tenant_operator(f"--allowed-roles={' '.join(rules)}", "--session-tags=true")
    emulator.seed(exports.app, 300)
    exports.apply(
        "tenant-run", credentials={"assumeRoleArn": TENANT_ROLE, "externalId": EXTERNAL_ID}
    )

    export = exports.wait("tenant-run", timeout=240)
    assert export["status"]["phase"] == "Succeeded", export["status"].get("message")
    assert export["status"]["output"]["files"] >= 1

    calls = emulator.sts_calls()
    callers = [call["CallerAccessKeyId"] for call in calls]
    assert set(callers) == {OPERATOR_KEY, COPIER_KEY}  # for Pinpoint's calls and for S3's
    assert callers.count(OPERATOR_KEY) == 1  # its clients of one identity share the session
    for call in calls:
        assert call["RoleArn"] == TENANT_ROLE
        assert call["ExternalId"] == EXTERNAL_ID
        assert call["RoleSessionName"] == f"{namespace}.tenant-run"
        assert call["Tags"] == [
            {"Key": "pinpoint-export-namespace", "Value": namespace},
            {"Key": "pinpoint-export-name", "Value": "tenant-run"},
        ]
    job = client.BatchV1Api(exports.api).read_namespaced_job(
        names.copy_job_name("tenant-run"), namespace
    )
    (container,) = job.spec.template.spec.containers
    assert {"--external-id=" + EXTERNAL_ID, f"--assume-role-arn={TENANT_ROLE}"} <= set(
        container.args
    )
    assert [(e.name, e.value) for e in container.env] == [("AWS_ENDPOINT_URL_STS", emulator.url)]


@pytest.fixture
def priority_class(api: client.ApiClient, namespace: str) -> Iterator[str]:
    """A PriorityClass: without one, the copy pod naming it would not be admitted."""
    scheduling = client.SchedulingV1Api(api)
    name = f"ppe-e2e-{uuid.uuid4().hex[:8]}"
    scheduling.create_priority_class({"metadata": {"name": name}, "value": 1000})
    yield name
    scheduling.delete_priority_class(name)


AFFINITY = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 10,
                "preference": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                    ]
                },
            }
        ]
    }
}


def test_the_copy_pod_carries_what_platform_teams_configure(
    exports: Exports, tenant_operator: StartOperator, priority_class: str
) -> None:
    tenant_operator(
        "--copy-image-pull-secrets=regcred,mirror-cred",
        '--copy-pod-labels={"team": "platform", "cost-center": "c1"}',
        '--copy-pod-annotations={"sidecar.istio.io/inject": "false"}',
        f"--copy-priority-class-name={priority_class}",
        f"--copy-affinity={json.dumps(AFFINITY)}",
    )
    exports.apply(
        "shaped",
        copy={
            "podLabels": {"cost-center": "c2"},
            "podAnnotations": {"example.com/owner": "team-a"},
        },
    )
    assert exports.wait("shaped", timeout=180)["status"]["phase"] == "Succeeded"

    job = client.BatchV1Api(exports.api).read_namespaced_job(
        names.copy_job_name("shaped"), exports.namespace
    )
    template = exports.api.sanitize_for_serialization(job.spec.template)
    labels = template["metadata"]["labels"]
    assert (labels["team"], labels["cost-center"]) == ("platform", "c2")  # the spec wins
    assert labels[names.LABEL_MANAGED_BY] == names.MANAGER
    assert labels[names.LABEL_EXPORT] == "shaped"
    assert template["metadata"]["annotations"] == {
        "sidecar.istio.io/inject": "false",
        "example.com/owner": "team-a",
    }
    assert template["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-cred"}]
    assert template["spec"]["priorityClassName"] == priority_class
    assert template["spec"]["affinity"] == AFFINITY

    (pod,) = (
        client.CoreV1Api(exports.api)
        .list_namespaced_pod(
            exports.namespace, label_selector=f"batch.kubernetes.io/job-name={job.metadata.name}"
        )
        .items
    )
    assert pod.spec.priority_class_name == priority_class
    assert pod.spec.priority == 1000  # admitted: the PriorityClass resolved
    assert [s.name for s in pod.spec.image_pull_secrets] == ["regcred", "mirror-cred"]
    assert pod.metadata.annotations["sidecar.istio.io/inject"] == "false"
    assert pod.metadata.labels["team"] == "platform"


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ({"copy": {"podLabels": {names.LABEL_MANAGED_BY: "me"}}}, "copy.podLabels must not set"),
        ({"copy": {"podLabels": {names.LABEL_EXPORT: "x"}}}, "copy.podLabels must not set"),
        ({"copy": {"podLabels": {"bad key!": "x"}}}, "copy.podLabels: each key must be"),
        ({"copy": {"podAnnotations": {"a/b/c": "x"}}}, "copy.podAnnotations: each key must"),
        ({"copy": {"priorityClassName": "Not_A_Name"}}, "spec.copy.priorityClassName"),
        (
            {"copy": {"imagePullSecrets": [{"name": "a"}, {"name": "a"}]}},
            "spec.copy.imagePullSecrets[1]: Duplicate value",
        ),
        ({"copy": {"affinity": {"nodeSelector": {}}}}, 'unknown field "spec.copy.affinity'),
        (
            {"copy": {"affinity": {"podAffinity": {REQUIRED: [{}]}}}},
            f"spec.copy.affinity.podAffinity.{REQUIRED}[0].topologyKey: Required value",
        ),
        (
            {"credentials": {"secretRef": {"name": "s"}, "externalId": "tenant-42"}},
            "credentials.externalId requires assumeRoleArn",
        ),
        (
            {"credentials": {"assumeRoleArn": TENANT_ROLE, "externalId": "has space"}},
            "spec.credentials.externalId",
        ),
    ],
)
def test_the_crd_refuses_what_the_copy_pod_or_sts_would(
    kubectl: Kubectl, crds: None, namespace: str, spec: dict[str, Any], refusal: str
) -> None:
    manifest = export_manifest("refused", "0" * 32, **spec)
    applied = ("apply", "--dry-run=server", "-n", namespace, "-f", "-")
    result = kubectl(*applied, input=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0
    assert refusal in result.stderr, result.stderr
