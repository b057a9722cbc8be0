"""The PinpointExport CRD and its examples, checked without a server.

The API server's own validation is exercised in tests/e2e/test_crd_validation.py; these checks
catch the mistakes that are cheap to catch early: a field without a description (an empty
`kubectl explain`), an example that drifted from the schema, a printer column pointing nowhere.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from ..crd_schema import (
    CRD_PATH,
    EXPORT_EXAMPLES,
    SCHEDULE_CRD_PATH,
    load_crd,
    load_example,
    named_properties,
    root_schema,
    validate,
    walk,
)


def test_crd_names_and_version() -> None:
    crd = load_crd()
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "pinpointexports.pinpoint.exports.dev"
    spec = crd["spec"]
    assert spec["group"] == "pinpoint.exports.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "PinpointExport",
        "listKind": "PinpointExportList",
        "plural": "pinpointexports",
        "singular": "pinpointexport",
        "shortNames": ["ppe"],
        "categories": ["pinpoint"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("crd", [CRD_PATH, SCHEDULE_CRD_PATH], ids=lambda p: p.stem)
def test_every_property_has_a_description(crd: Path) -> None:
    """Of both CRDs: `kubectl explain` must read well."""
    missing = [
        path
        for path, schema in named_properties(root_schema(crd))
        if path != "metadata" and not str(schema.get("description", "")).strip()
    ]
    assert not missing, f"properties without a description: {missing}"


def test_design_fields_are_all_there() -> None:
    properties = {path for path, _ in named_properties(root_schema())}
    spec_fields = """applicationId roleArn s3UrlPrefix segmentId segmentVersion region endpointUrl
        s3EndpointUrl credentials credentials.secretRef credentials.secretRef.name
        credentials.assumeRoleArn destination destination.claimName destination.path copy
        copy.image copy.resources copy.backoffLimit copy.activeDeadlineSeconds
        copy.ttlSecondsAfterFinished copy.serviceAccountName copy.nodeSelector copy.tolerations
        copy.decompress pollIntervalSeconds exportTimeoutSeconds"""
    status_fields = """phase progress runId startTime completionTime observedGeneration message
        exportJob.id exportJob.jobStatus exportJob.s3Url exportJob.completedPieces
        exportJob.totalPieces exportJob.failedPieces exportJob.totalProcessed
        exportJob.totalFailures exportJob.failures exportJob.creationDate
        exportJob.completionDate copyJob.name copyJob.active copyJob.succeeded copyJob.failed
        output.claimName output.path output.files output.bytes output.manifest conditions"""
    wanted = {f"spec.{f}" for f in spec_fields.split()} | {
        f"status.{f}" for f in status_fields.split()
    }
    assert not wanted - properties, f"missing: {sorted(wanted - properties)}"


def test_required_fields() -> None:
    spec = root_schema()["properties"]["spec"]
    assert set(spec["required"]) == {"applicationId", "roleArn", "s3UrlPrefix", "destination"}
    assert spec["properties"]["destination"]["required"] == ["claimName"]
    assert spec["properties"]["credentials"]["properties"]["secretRef"]["required"] == ["name"]


def test_defaults() -> None:
    spec = root_schema()["properties"]["spec"]["properties"]
    assert spec["pollIntervalSeconds"]["default"] == 15
    assert spec["exportTimeoutSeconds"]["default"] == 21600
    # `copy: {}` by default, so that its own defaults apply when copy is omitted.
    assert spec["copy"]["default"] == {}
    assert spec["copy"]["properties"]["backoffLimit"]["default"] == 3
    assert spec["copy"]["properties"]["decompress"]["default"] is False
    for path, schema in walk(root_schema()):
        if "default" in schema:
            assert not validate(schema["default"], schema, path), path


def test_spec_is_immutable() -> None:
    rules = root_schema()["properties"]["spec"]["x-kubernetes-validations"]
    assert {
        "rule": "self == oldSelf",
        "message": "spec is immutable: create a new PinpointExport for a new export",
        "reason": "FieldValueForbidden",
    } in rules


def test_cel_rules_have_messages_naming_their_field() -> None:
    rules = 0
    for path, schema in walk(root_schema()):
        for rule in schema.get("x-kubernetes-validations", []):
            rules += 1
            message = rule.get("message") or rule.get("messageExpression")
            assert message, f"{path}: rule {rule['rule']!r} has no message"
            names = {path.rsplit(".", 1)[-1].removesuffix("[]"), rule.get("fieldPath", "")[1:]}
            names |= set(re.findall(r"self\.([\w.]+)", rule["rule"]))  # e.g. metadata.name
            assert any(n and n in message for n in names), f"{path}: {message!r}"
    assert rules >= 10


def test_strings_seen_by_cel_are_bounded() -> None:
    """The API server estimates each CEL rule's cost from these bounds; unbounded input fails."""
    spec = root_schema()["properties"]["spec"]
    unbounded = [
        path
        for path, schema in walk(spec, "spec")
        if (schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema)
        or (schema.get("type") == "array" and "maxItems" not in schema)
        or (isinstance(schema.get("additionalProperties"), dict) and "maxProperties" not in schema)
    ]
    assert not unbounded, unbounded


def test_patterns_compile_and_mean_what_they_say() -> None:
    for _, schema in walk(root_schema()):
        if "pattern" in schema:
            re.compile(schema["pattern"])
    spec = root_schema()["properties"]["spec"]["properties"]
    cases: dict[str, tuple[list[str], list[str]]] = {
        "applicationId": (
            ["0123456789abcdef0123456789abcdef"],
            ["0123456789ABCDEF0123456789ABCDEF", "0123", "0123456789abcdef0123456789abcdefa"],
        ),
        "roleArn": (
            [
                "arn:aws:iam::123456789012:role/PinpointExport",
                "arn:aws-cn:iam::123456789012:role/service-role/pinpoint/Export",
                "arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f_g-h",
                "arn:aws-iso-b:iam::123456789012:role/x",
            ],
            [
                "arn:aws:iam::12345678901:role/x",
                "arn:aws:iam::123456789012:user/x",
                "arn:aws:s3:::bucket",
                "arn:aws:iam::123456789012:role/",
                "arn:azure:iam::123456789012:role/x",
                "arn:aws:iam::123456789012:role/" + "x" * 65,
            ],
        ),
        "s3UrlPrefix": (
            # The trailing '/' is a CEL rule (with a friendlier message), not the pattern.
            ["s3://my-bucket/", "s3://my.bucket-1/a/b=c/", "s3://abc/", "s3://my-bucket"],
            [
                "https://bucket/",
                "s3://My-Bucket/",
                "s3://ab/",
                "s3://-bucket/",
                "s3://bucket-/",
                "s3://" + "a" * 64 + "/",
                "s3://bucket//",
                "s3://bucket/a b/",
            ],
        ),
        "region": (
            ["us-east-1", "us-gov-west-1", "ap-southeast-3", "us-isob-east-1"],
            ["US-EAST-1", "useast1", "us-east", "us-east-1a"],
        ),
        "endpointUrl": (
            [
                "http://127.0.0.1:4566",
                "https://pinpoint.us-east-1.amazonaws.com",
                "http://[::1]:80/x",
            ],
            [
                "ftp://host",
                "pinpoint.example.com",
                "http://",
                "http://host?x=1",
                "http://a b",
                # What botocore refuses too: empty or over-long labels, hyphens at their ends,
                # ports out of range.
                "http://minio..svc:9000",
                "http://a-.b",
                "http://" + "a" * 64 + ".com",
                "http://host:0",
                "http://host:65536",
            ],
        ),
    }
    cases["s3EndpointUrl"] = cases["endpointUrl"]
    image = spec["copy"]["properties"]["image"]["pattern"]
    for value in [
        "ghcr.io/example/pinpoint-export-operator:0.1.0",
        "busybox",
        "team/copier",
        "localhost/copier",
        "Registry.Corp:5000/team-a/copier:v1",  # capitals only in the registry
        "registry.corp/copier:1.2@sha256:" + "0" * 64,
    ]:
        assert re.search(image, value), f"copy.image should accept {value!r}"
    for value in ["registry.corp/Copier:1", "Team/copier", "copier:1 2", "copier:", "a//b"]:
        assert not re.search(image, value), f"copy.image should reject {value!r}"
    for field, (good, bad) in cases.items():
        pattern = re.compile(spec[field]["pattern"])
        for value in good:
            assert pattern.search(value), f"{field} should accept {value!r}"
        for value in bad:
            assert not pattern.search(value), f"{field} should reject {value!r}"


def test_status_conditions_are_a_map_keyed_by_type() -> None:
    conditions = root_schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    # A list-map key must be required (or defaulted), else the API server rejects the schema.
    assert "type" in item["required"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    phase = root_schema()["properties"]["status"]["properties"]["phase"]
    assert phase["enum"] == ["Pending", "Exporting", "Copying", "Succeeded", "Failed"]


def test_status_keeps_kopfs_records() -> None:
    """Kopf writes status.kopf (progress, and a dummy to wake itself once a daemon stopped, so
    that it can release the finalizer): a schema that pruned it left deleted exports stuck."""
    kopf = root_schema()["properties"]["status"]["properties"]["kopf"]
    assert kopf["type"] == "object" and kopf["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_columns_point_at_schema_fields() -> None:
    (version,) = load_crd()["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "Progress", "Endpoints", "Files", "Age", "Job", "Message"]
    assert {n for n, c in columns.items() if c.get("priority", 0) == 1} == {"Job", "Message"}
    properties = {path: schema for path, schema in named_properties(root_schema())}
    kinds = {"string": "string", "integer": "integer"}
    for name, column in columns.items():
        path = column["jsonPath"].lstrip(".")
        if path == "metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        assert path in properties, f"{name}: {path} is not in the schema"
        assert kinds[properties[path]["type"]] == column["type"], name


@pytest.mark.parametrize("name", EXPORT_EXAMPLES)
def test_export_examples_conform(name: str) -> None:
    example = load_example(name)
    assert example["apiVersion"] == "pinpoint.exports.dev/v1alpha1"
    assert example["kind"] == "PinpointExport"
    assert "namespace" not in example["metadata"], "examples apply to the current namespace"
    assert validate(example, root_schema()) == []
    spec = example["spec"]
    assert spec["destination"]["claimName"] == load_example("pvc.yaml")["metadata"]["name"]
    assert spec["credentials"] == {"secretRef": {"name": "pinpoint-credentials"}}
    assert spec["s3UrlPrefix"].endswith("/")


def test_segment_example_selects_a_segment() -> None:
    assert "segmentId" in load_example("pinpointexport-segment.yaml")["spec"]
    assert "segmentId" not in load_example("pinpointexport.yaml")["spec"]


def test_pvc_example() -> None:
    pvc = load_example("pvc.yaml")
    assert (pvc["apiVersion"], pvc["kind"], pvc["metadata"]["name"]) == (
        "v1",
        "PersistentVolumeClaim",
        "exports",
    )
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1Gi"


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"applicationId": "ABC"}, "spec.applicationId"),
        ({"pollIntervalSeconds": 0}, "spec.pollIntervalSeconds"),
        ({"destination": {"claimName": "Exports"}}, "spec.destination.claimName"),
        ({"copy": {"backoffLimit": "3"}}, "spec.copy.backoffLimit"),
        ({"copy": {"tolerations": [{"operator": "Maybe"}]}}, "spec.copy.tolerations[0].operator"),
        ({"destinaton": {}}, "spec.destinaton: unknown field"),
    ],
)
def test_the_validator_is_not_vacuous(patch: dict[str, Any], error: str) -> None:
    example = copy.deepcopy(load_example("pinpointexport.yaml"))
    example["spec"].update(patch)
    assert any(e.startswith(error) for e in validate(example, root_schema()))
