"""The PinpointExport CRD in a real API server: what it accepts, rejects, defaults and prints.

Invalid objects go through `kubectl apply`, as a user's would (kubectl's default
`--validate=strict` makes the server reject unknown fields), and each must be refused with a
message that names the offending field.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_sandbox import process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "pinpointexports.yaml"
EXAMPLES = ROOT / "examples"
CRD_NAME = "pinpointexports.pinpoint.exports.dev"
GROUP, VERSION, PLURAL = "pinpoint.exports.dev", "v1alpha1", "pinpointexports"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
DELETE = None  # in a patch: remove the key


@pytest.fixture(scope="session")
def pinpoint_crd(api: client.ApiClient, kubectl: Kubectl) -> str:
    """The PinpointExport CRD, installed (server-side apply, idempotent) and served."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=pinpoint-export-tests",
        "-f",
        str(CRD_PATH),
    )
    extensions = client.ApiextensionsV1Api(api)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(CRD_NAME)
        conditions = {c.type: c.status for c in ((crd.status and crd.status.conditions) or [])}
        return conditions.get("Established") == "True"

    process.wait_for(established, 60, f"CRD {CRD_NAME} Established")
    # Served and in discovery (kubectl resolves `ppe` through it).
    process.wait_for(
        lambda: kubectl("get", "ppe", "--all-namespaces", check=False).returncode == 0,
        60,
        "kubectl get ppe",
    )
    return CRD_NAME


@pytest.fixture(scope="module")
def validation_namespace(api: client.ApiClient, pinpoint_crd: str) -> Iterator[str]:
    """One namespace for the rejected objects: none of them is ever created."""
    core = client.CoreV1Api(api)
    name = f"crd-validation-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def valid_export(name: str) -> dict[str, Any]:
    """A minimal valid PinpointExport, the base that each invalid case patches."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PinpointExport",
        "metadata": {"name": name},
        "spec": {
            "applicationId": "0123456789abcdef0123456789abcdef",
            "roleArn": "arn:aws:iam::123456789012:role/PinpointExportToS3",
            "s3UrlPrefix": "s3://pinpoint-exports/endpoints/",
            "destination": {"claimName": "exports", "path": "marketing/nightly"},
        },
    }


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in, as a JSON merge patch: None removes a key."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DELETE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply(
    kubectl: Kubectl, namespace: str, obj: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply` as a user runs it (strict field validation is kubectl's default)."""
    return kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)


def custom_objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def api_message(error: client.ApiException) -> str:
    """The message of the Status an API error carries."""
    return str(json.loads(error.body or "{}").get("message", ""))


ARN = "arn:aws:iam::123456789012:role/PinpointExportToS3"
# (case, JSON merge patch to valid_export()["spec"], substrings expected in kubectl's error: the
# first names the field, the others check the message a user reads).
INVALID: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    # applicationId, segmentId, segmentVersion
    (
        "app-id-uppercase",
        {"applicationId": "0123456789ABCDEF0123456789ABCDEF"},
        ("spec.applicationId",),
    ),
    ("app-id-short", {"applicationId": "0123456789abcdef"}, ("spec.applicationId",)),
    ("app-id-missing", {"applicationId": DELETE}, ("spec.applicationId", "Required value")),
    ("segment-id-not-hex", {"segmentId": "my-segment"}, ("spec.segmentId",)),
    (
        "segment-version-without-segment",
        {"segmentVersion": 2},
        ("spec.segmentVersion", "segmentVersion requires segmentId"),
    ),
    (
        "segment-version-zero",
        {"segmentId": "fedcba9876543210fedcba9876543210", "segmentVersion": 0},
        ("spec.segmentVersion", "greater than or equal to 1"),
    ),
    # roleArn
    ("role-arn-user", {"roleArn": "arn:aws:iam::123456789012:user/alice"}, ("spec.roleArn",)),
    ("role-arn-short-account", {"roleArn": "arn:aws:iam::12345678901:role/x"}, ("spec.roleArn",)),
    ("role-arn-partition", {"roleArn": "arn:gcp:iam::123456789012:role/x"}, ("spec.roleArn",)),
    ("role-arn-missing", {"roleArn": DELETE}, ("spec.roleArn", "Required value")),
    # s3UrlPrefix
    ("s3-no-scheme", {"s3UrlPrefix": "pinpoint-exports/endpoints/"}, ("spec.s3UrlPrefix",)),
    ("s3-https", {"s3UrlPrefix": "https://pinpoint-exports/endpoints/"}, ("spec.s3UrlPrefix",)),
    ("s3-uppercase-bucket", {"s3UrlPrefix": "s3://Pinpoint-Exports/"}, ("spec.s3UrlPrefix",)),
    ("s3-bucket-too-short", {"s3UrlPrefix": "s3://ab/"}, ("spec.s3UrlPrefix",)),
    ("s3-bucket-too-long", {"s3UrlPrefix": f"s3://{'b' * 64}/"}, ("spec.s3UrlPrefix",)),
    (
        "s3-bucket-double-dot",
        {"s3UrlPrefix": "s3://pinpoint..exports/"},
        ("spec.s3UrlPrefix", "must not contain '..'"),
    ),
    (
        "s3-no-trailing-slash",
        {"s3UrlPrefix": "s3://pinpoint-exports/endpoints"},
        ("spec.s3UrlPrefix", "must end with '/'"),
    ),
    (
        "s3-dot-dot-segment",
        {"s3UrlPrefix": "s3://pinpoint-exports/a/../b/"},
        ("spec.s3UrlPrefix", "'..' path segments"),
    ),
    ("s3-missing", {"s3UrlPrefix": DELETE}, ("spec.s3UrlPrefix", "Required value")),
    # region and endpoints
    ("region-uppercase", {"region": "US-EAST-1"}, ("spec.region",)),
    ("endpoint-url-ftp", {"endpointUrl": "ftp://pinpoint.example.com"}, ("spec.endpointUrl",)),
    ("endpoint-url-no-scheme", {"endpointUrl": "pinpoint.example.com"}, ("spec.endpointUrl",)),
    ("s3-endpoint-url-query", {"s3EndpointUrl": "http://s3.local?x=1"}, ("spec.s3EndpointUrl",)),
    # Only the copy Job uses s3EndpointUrl: botocore refusing it there would come after Pinpoint.
    (
        "s3-endpoint-url-empty-label",
        {"s3EndpointUrl": "http://minio..svc:9000"},
        ("spec.s3EndpointUrl",),
    ),
    ("s3-endpoint-url-port", {"s3EndpointUrl": "http://minio.svc:99999"}, ("spec.s3EndpointUrl",)),
    # credentials
    (
        "credentials-both",
        {"credentials": {"secretRef": {"name": "pinpoint-credentials"}, "assumeRoleArn": ARN}},
        ("spec.credentials.assumeRoleArn", "not both"),
    ),
    (
        "credentials-empty",
        {"credentials": {}},
        ("spec.credentials", "set secretRef or assumeRoleArn"),
    ),
    (
        "credentials-secret-name",
        {"credentials": {"secretRef": {"name": "Pinpoint_Credentials"}}},
        ("spec.credentials.secretRef.name",),
    ),
    (
        "credentials-secret-no-name",
        {"credentials": {"secretRef": {}}},
        ("spec.credentials.secretRef.name", "Required value"),
    ),
    (
        "credentials-assume-role-arn",
        {"credentials": {"assumeRoleArn": "arn:aws:iam::123456789012:policy/x"}},
        ("spec.credentials.assumeRoleArn",),
    ),
    # destination
    ("destination-missing", {"destination": DELETE}, ("spec.destination", "Required value")),
    (
        "claim-name-missing",
        {"destination": {"claimName": DELETE}},
        ("spec.destination.claimName", "Required value"),
    ),
    (
        "claim-name-invalid",
        {"destination": {"claimName": "Exports_1"}},
        ("spec.destination.claimName",),
    ),
    (
        "path-absolute",
        {"destination": {"path": "/etc/cron.d"}},
        ("spec.destination.path", "relative"),
    ),
    (
        "path-dot-dot",
        {"destination": {"path": "marketing/../../etc"}},
        ("spec.destination.path", "'..' segment"),
    ),
    (
        "path-dot-dot-alone",
        {"destination": {"path": ".."}},
        ("spec.destination.path", "'..' segment"),
    ),
    (
        "path-backslash",
        {"destination": {"path": "marketing\\nightly"}},
        ("spec.destination.path", "backslash"),
    ),
    (
        "path-control-character",
        {"destination": {"path": "marketing\nnightly"}},
        ("spec.destination.path", "control characters"),
    ),
    ("path-too-long", {"destination": {"path": "a" * 1025}}, ("spec.destination.path", "Too long")),
    (
        "path-with-latest",  # the copier's link to the newest run of the path above
        {"destination": {"path": "latest/nightly"}},
        ("spec.destination.path", "'latest'"),
    ),
    (
        "path-component-over-255-bytes",
        {"destination": {"path": "marketing/" + "é" * 128}},  # 128 characters, 256 bytes
        ("spec.destination.path", "255 bytes"),
    ),
    # copy
    (
        "image-uppercase-repository",
        {"copy": {"image": "registry.corp/Copier:1"}},
        ("spec.copy.image",),
    ),
    ("image-space-in-tag", {"copy": {"image": "registry.corp/copier:1 2"}}, ("spec.copy.image",)),
    ("backoff-limit-negative", {"copy": {"backoffLimit": -1}}, ("spec.copy.backoffLimit",)),
    ("backoff-limit-too-large", {"copy": {"backoffLimit": 101}}, ("spec.copy.backoffLimit",)),
    (
        "active-deadline-zero",
        {"copy": {"activeDeadlineSeconds": 0}},
        ("spec.copy.activeDeadlineSeconds",),
    ),
    (
        "ttl-negative",
        {"copy": {"ttlSecondsAfterFinished": -1}},
        ("spec.copy.ttlSecondsAfterFinished",),
    ),
    (
        # The copy Job must still exist when the operator reads its result.
        "ttl-too-short",
        {"copy": {"ttlSecondsAfterFinished": 0}},
        ("spec.copy.ttlSecondsAfterFinished",),
    ),
    (
        "service-account-invalid",
        {"copy": {"serviceAccountName": "Copier!"}},
        ("spec.copy.serviceAccountName",),
    ),
    ("decompress-not-boolean", {"copy": {"decompress": "yes"}}, ("spec.copy.decompress",)),
    (
        "resources-bad-quantity",
        {"copy": {"resources": {"limits": {"memory": "lots"}}}},
        ("spec.copy.resources.limits",),
    ),
    (
        "toleration-exists-with-value",
        {"copy": {"tolerations": [{"key": "dedicated", "operator": "Exists", "value": "x"}]}},
        ("spec.copy.tolerations[0].value: Forbidden", "operator is Exists"),
    ),
    (
        "toleration-bad-effect",
        {"copy": {"tolerations": [{"operator": "Exists", "effect": "Sometimes"}]}},
        ("spec.copy.tolerations[0].effect",),
    ),
    # polling and timeout
    ("poll-interval-zero", {"pollIntervalSeconds": 0}, ("spec.pollIntervalSeconds",)),
    ("poll-interval-3601", {"pollIntervalSeconds": 3601}, ("spec.pollIntervalSeconds",)),
    ("export-timeout-59", {"exportTimeoutSeconds": 59}, ("spec.exportTimeoutSeconds",)),
    ("export-timeout-8-days", {"exportTimeoutSeconds": 691200}, ("spec.exportTimeoutSeconds",)),
    # unknown fields: rejected because kubectl asks for strict field validation
    ("unknown-field", {"destinaton": {"claimName": "x"}}, ('unknown field "spec.destinaton"',)),
    (
        "unknown-secret-ref-field",
        {"credentials": {"secretRef": {"name": "pinpoint-credentials", "key": "aws"}}},
        ('unknown field "spec.credentials.secretRef.key"',),
    ),
]


@pytest.mark.parametrize(("case", "patch", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_export_is_rejected(
    api: client.ApiClient,
    kubectl: Kubectl,
    validation_namespace: str,
    case: str,
    patch: dict[str, Any],
    expected: tuple[str, ...],
) -> None:
    obj = merged(valid_export(f"bad-{case}"), {"spec": patch})
    result = apply(kubectl, validation_namespace, obj)
    assert result.returncode != 0, f"{case} was accepted:\n{result.stdout}"
    for text in expected:
        assert text in result.stderr, f"{case}: {text!r} not in:\n{result.stderr}"
    with pytest.raises(client.ApiException) as error:
        custom_objects(api).get_namespaced_custom_object(
            GROUP, VERSION, validation_namespace, PLURAL, f"bad-{case}"
        )
    assert error.value.status == 404


def test_a_name_too_long_for_a_label_is_rejected(
    kubectl: Kubectl, validation_namespace: str
) -> None:
    obj = valid_export("n" * 64)
    result = apply(kubectl, validation_namespace, obj)
    assert result.returncode != 0, result.stdout
    assert "metadata.name must be at most 63 characters" in result.stderr
    assert apply(kubectl, validation_namespace, valid_export("n" * 63)).returncode == 0


def test_there_are_at_least_15_invalid_cases() -> None:
    assert len(INVALID) >= 15
    assert len({case for case, _, _ in INVALID}) == len(INVALID)


def test_missing_spec_is_rejected(kubectl: Kubectl, validation_namespace: str) -> None:
    obj = merged(valid_export("bad-no-spec"), {"spec": DELETE})
    result = apply(kubectl, validation_namespace, obj)
    assert result.returncode != 0
    assert "spec: Required value" in result.stderr, result.stderr


def test_unknown_field_through_the_api(api: client.ApiClient, validation_namespace: str) -> None:
    """fieldValidation=Strict rejects an unknown field; Ignore drops it (structural pruning)."""
    objects = custom_objects(api)
    body = merged(valid_export("unknown-field"), {"spec": {"destination": {"subPath": "x"}}})
    with pytest.raises(client.ApiException) as error:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, validation_namespace, PLURAL, body, field_validation="Strict"
        )
    assert error.value.status == 400
    message = api_message(error.value)
    assert 'strict decoding error: unknown field "spec.destination.subPath"' in message
    created: dict[str, Any] = objects.create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, validation_namespace, PLURAL, body, dry_run="All", field_validation="Ignore"
    )
    assert created["spec"]["destination"] == {"claimName": "exports", "path": "marketing/nightly"}


def test_spec_is_immutable(kubectl: Kubectl, validation_namespace: str) -> None:
    obj = valid_export("immutable")
    assert apply(kubectl, validation_namespace, obj).returncode == 0
    # Applying the same object again is a no-op, not an error.
    assert apply(kubectl, validation_namespace, obj).returncode == 0
    for field, value in [
        ("pollIntervalSeconds", 30),
        ("applicationId", "fedcba9876543210fedcba9876543210"),
        ("destination", {"claimName": "exports", "path": "elsewhere"}),
    ]:
        changed = merged(obj, {"spec": {field: value}})
        result = apply(kubectl, validation_namespace, changed)
        assert result.returncode != 0, f"changing spec.{field} was accepted"
        assert (
            "spec: Forbidden: spec is immutable: create a new PinpointExport for a new export"
            in result.stderr
        ), result.stderr
    # Metadata is not the spec: labels and annotations may change.
    labelled = kubectl("label", "-n", validation_namespace, "ppe/immutable", "team=marketing")
    assert "labeled" in labelled.stdout
    kubectl("delete", "-n", validation_namespace, "ppe/immutable")


@pytest.mark.parametrize("example", ["pinpointexport.yaml", "pinpointexport-segment.yaml"])
def test_examples_are_accepted(kubectl: Kubectl, validation_namespace: str, example: str) -> None:
    result = kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        validation_namespace,
        "-f",
        str(EXAMPLES / "pvc.yaml"),
        "-f",
        str(EXAMPLES / example),
        "-o",
        "json",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    kinds = {item["kind"]: item for item in items}
    assert set(kinds) == {"PersistentVolumeClaim", "PinpointExport"}
    source = yaml.safe_load((EXAMPLES / example).read_text())
    served = kinds["PinpointExport"]["spec"]  # the example's spec, plus the defaults
    for key, value in source["spec"].items():
        if isinstance(value, dict):
            assert merged(served[key], value) == served[key], key
        else:
            assert served[key] == value, key


def test_defaults_are_applied(kubectl: Kubectl, validation_namespace: str) -> None:
    result = kubectl(
        "create",
        "--dry-run=server",
        "-n",
        validation_namespace,
        "-f",
        "-",
        "-o",
        "json",
        input=json.dumps(valid_export("defaults")),
    )
    spec = json.loads(result.stdout)["spec"]
    assert spec["pollIntervalSeconds"] == 15
    assert spec["exportTimeoutSeconds"] == 21600
    assert spec["copy"] == {"backoffLimit": 3, "decompress": False}
    assert "credentials" not in spec
    assert "region" not in spec


def test_kubectl_explain_reads_well(kubectl: Kubectl, pinpoint_crd: str) -> None:
    # The aggregated OpenAPI document is updated shortly after the CRD is Established.
    def explain(field: str) -> str | None:
        result = kubectl("explain", field, check=False)
        # kubectl wraps descriptions at 80 columns: compare on single spaces.
        return " ".join(result.stdout.split()) if result.returncode == 0 else None

    path = "pinpointexport.spec.destination.path"
    text = process.wait_for(lambda: explain(path), 60, f"kubectl explain {path}")
    assert "GROUP: pinpoint.exports.dev" in text
    assert "KIND: PinpointExport" in text
    assert "FIELD: path <string>" in text
    assert "Directory inside the claim, relative to its root, e.g. marketing/nightly" in text
    assert "Must not be absolute, contain a '..' or 'latest' segment" in text
    spec = explain("ppe.spec") or ""
    for field in ("applicationId", "roleArn", "s3UrlPrefix", "destination"):
        assert f"{field} <string> -required-" in spec or f"{field} <Object> -required-" in spec
    for field in ("segmentId", "segmentVersion", "credentials", "copy", "pollIntervalSeconds"):
        assert f"{field} <" in spec
    assert "(1 to 3600; default 15)" in (explain("ppe.spec.pollIntervalSeconds") or "")
    status = explain("ppe.status.progress") or ""
    assert "e.g. 1/3" in status


def test_printer_columns(kubectl: Kubectl, validation_namespace: str) -> None:
    ns = validation_namespace
    assert apply(kubectl, ns, valid_export("columns")).returncode == 0
    message = "Pinpoint is exporting: 1 of 3 pieces done"
    # A finished phase, so that an operator running beside these tests leaves it alone.
    status = {
        "status": {
            "phase": "Succeeded",
            "progress": "1/3",
            "runId": "20260101t000000z",
            "message": message,
            "exportJob": {"id": "a1b2c3d4", "jobStatus": "PROCESSING", "totalProcessed": 1234},
            "output": {"files": 2},
            "conditions": [
                {
                    "type": "Reconciling",
                    "status": "True",
                    "reason": "Exporting",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
        }
    }

    def shown() -> list[str] | None:
        # Patched until it sticks: an operator may still be finishing its own first pass.
        kubectl(
            "patch", "-n", ns, "ppe/columns", "--subresource=status", "--type=merge",
            "-p", json.dumps(status),
        )  # fmt: skip
        table = kubectl("get", "-n", ns, "ppe", "columns").stdout.splitlines()
        return table if table[1].split()[1] == "Succeeded" else None

    table = process.wait_for(shown, 30, "the patched status shown", interval=0.5)
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "ENDPOINTS", "FILES", "AGE"]
    assert table[1].split()[:5] == ["columns", "Succeeded", "1/3", "1234", "2"]
    wide = kubectl("get", "-n", ns, "ppe", "columns", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME", "PHASE", "PROGRESS", "ENDPOINTS", "FILES", "AGE", "JOB", "MESSAGE",
    ]  # fmt: skip
    assert wide[1].split()[6:] == ["a1b2c3d4", *message.split()]
    # The category finds it too.
    assert "columns" in kubectl("get", "-n", ns, "pinpoint").stdout
    kubectl("delete", "-n", ns, "ppe/columns")


def test_status_is_a_subresource(api: client.ApiClient, validation_namespace: str) -> None:
    """Writes to the main resource ignore status; writes to /status ignore spec."""
    objects = custom_objects(api)
    ns = validation_namespace
    body = merged(valid_export("subresource"), {"status": {"phase": "Succeeded"}})
    created: dict[str, Any] = objects.create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, ns, PLURAL, body
    )
    assert "status" not in created
    patch = {"spec": {"pollIntervalSeconds": 99}, "status": {"phase": "Pending"}}
    patched: dict[str, Any] = objects.patch_namespaced_custom_object_status(  # type: ignore[assignment]
        GROUP, VERSION, ns, PLURAL, "subresource", patch
    )
    assert patched["status"]["phase"] == "Pending"
    assert patched["spec"]["pollIntervalSeconds"] == 15
    bad = {"status": {"phase": "Done"}}
    with pytest.raises(client.ApiException) as error:
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "subresource", bad
        )
    assert 'status.phase: Unsupported value: "Done"' in api_message(error.value)
    objects.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "subresource")
