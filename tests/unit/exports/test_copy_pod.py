"""The copy pod as platform teams shape it, and the copier's AssumeRole, in the copy Job."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from pinpoint_export_operator import api, cli
from pinpoint_export_operator.config import AssumeRoleSettings, CopierDefaults
from pinpoint_export_operator.copier import command
from pinpoint_export_operator.exports import copy_job

from .test_state import make_export

AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["batch"]}]}
            ]
        }
    }
}
SHAPED = CopierDefaults(
    image="example/ppe:1",
    image_pull_secrets=("regcred",),
    pod_labels={"team": "platform", "cost-center": "c1"},
    pod_annotations={"sidecar.istio.io/inject": "false"},
    priority_class_name="batch-low",
    affinity=AFFINITY,
)
READER = "arn:aws:iam::210987654321:role/reader"


def template(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]
    return pod


def test_without_defaults_or_options_the_pod_is_as_before() -> None:
    pod = template(copy_job.build(make_export(), CopierDefaults()))
    assert pod["metadata"] == {
        "labels": {api.LABEL_MANAGED_BY: api.MANAGER, api.LABEL_EXPORT: "nightly"}
    }
    assert not {"imagePullSecrets", "priorityClassName", "affinity"} & set(pod["spec"])


def test_the_operators_defaults_shape_every_copy_pod() -> None:
    pod = template(copy_job.build(make_export(), SHAPED))
    assert pod["metadata"]["labels"] == {
        "team": "platform",
        "cost-center": "c1",
        api.LABEL_MANAGED_BY: api.MANAGER,
        api.LABEL_EXPORT: "nightly",
    }
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["priorityClassName"] == "batch-low"
    assert pod["spec"]["affinity"] == AFFINITY


def test_the_spec_overrides_each_default() -> None:
    options = {
        "podLabels": {"cost-center": "c2", "app": "nightly"},
        "podAnnotations": {"sidecar.istio.io/inject": "true", "note": "x"},
        "imagePullSecrets": [{"name": "team-registry"}],
        "priorityClassName": "batch-high",
        "affinity": {"podAntiAffinity": {}},
    }
    pod = template(copy_job.build(make_export(copy=options), SHAPED))
    labels = pod["metadata"]["labels"]
    assert (labels["team"], labels["cost-center"], labels["app"]) == ("platform", "c2", "nightly")
    assert pod["metadata"]["annotations"] == {"sidecar.istio.io/inject": "true", "note": "x"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "team-registry"}]
    assert pod["spec"]["priorityClassName"] == "batch-high"
    assert pod["spec"]["affinity"] == {"podAntiAffinity": {}}


def test_an_empty_list_or_affinity_in_the_spec_clears_the_default() -> None:
    pod = template(
        copy_job.build(make_export(copy={"imagePullSecrets": [], "affinity": {}}), SHAPED)
    )
    assert "imagePullSecrets" not in pod["spec"] and "affinity" not in pod["spec"]


def test_the_operators_labels_cannot_be_overridden() -> None:
    hostile = {
        api.LABEL_MANAGED_BY: "someone-else",
        api.LABEL_EXPORT: "another-export",
        "batch.kubernetes.io/job-name": "x",
        "job-name": "x",
        "controller-uid": "x",
        "pinpoint.exports.dev/anything": "x",
    }
    defaults = CopierDefaults(pod_labels={**hostile, "team": "platform"})
    manifest = copy_job.build(make_export(copy={"podLabels": hostile}), defaults)
    assert template(manifest)["metadata"]["labels"] == {
        "team": "platform",
        api.LABEL_MANAGED_BY: api.MANAGER,
        api.LABEL_EXPORT: "nightly",
    }
    # The Job's own labels (which the operator watches) never take pod labels.
    assert manifest["metadata"]["labels"] == {
        api.LABEL_MANAGED_BY: api.MANAGER,
        api.LABEL_EXPORT: "nightly",
    }


def test_shaping_keeps_pod_security_restricted() -> None:
    spec = template(copy_job.build(make_export(), SHAPED))["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False


def copier_args(defaults: CopierDefaults, **credentials: Any) -> tuple[list[str], list[Any]]:
    export = make_export(credentials=credentials)
    (container,) = template(copy_job.build(export, defaults))["spec"]["containers"]
    return container["args"], container["env"]


def test_the_copier_assumes_the_role_as_the_operator_does() -> None:
    settings = AssumeRoleSettings(session_tags=True, sts_endpoint_url="http://sts.local:4566")
    args, env = copier_args(
        CopierDefaults(assume_role=settings), assumeRoleArn=READER, externalId="tenant-42"
    )
    assert [a for a in args if a.startswith(("--assume", "--role", "--external", "--session"))] == [
        f"--assume-role-arn={READER}",
        "--role-session-name=marketing.nightly",
        "--external-id=tenant-42",
        "--session-tag=pinpoint-export-namespace=marketing",
        "--session-tag=pinpoint-export-name=nightly",
    ]
    # The copier reaches the operator's STS endpoint through botocore's own variable.
    assert env == [{"name": "AWS_ENDPOINT_URL_STS", "value": "http://sts.local:4566"}]


def test_without_session_tags_or_external_id_none_are_passed() -> None:
    args, env = copier_args(CopierDefaults(), assumeRoleArn=READER)
    assert not [a for a in args if a.startswith(("--external-id", "--session-tag"))]
    assert "--role-session-name=marketing.nightly" in args
    assert env == []


def test_the_copier_parses_what_the_job_passes_into_its_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = AssumeRoleSettings(session_tags=True)
    args, _ = copier_args(
        CopierDefaults(assume_role=settings), assumeRoleArn=READER, externalId="e:1/2"
    )
    parsed = cli.build_parser("pinpoint-export-operator", None, cli.COMMANDS, args).parse_args(args)
    seen: dict[str, Any] = {}

    def make_client(**options: Any) -> Any:
        seen.update(options)
        raise RuntimeError("no S3 here")

    monkeypatch.setattr(command, "make_client", make_client)
    monkeypatch.setattr(command, "_report", lambda *_: None)
    command.main(parsed)
    assert seen["assume_role_arn"] == READER
    assert seen["role_session_name"] == "marketing.nightly"
    assert seen["external_id"] == "e:1/2"
    assert seen["session_tags"] == (
        ("pinpoint-export-namespace", "marketing"),
        ("pinpoint-export-name", "nightly"),
    )


def test_the_copier_refuses_a_session_name_aws_would_refuse() -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    required = ["--source=s3://b/p/", "--dest=/tmp/run-1"]
    for bad in ("x", "a/b", "a" * 65, "ns name"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([*required, f"--role-session-name={bad}"])
        assert exited.value.code == 2
    tags = parser.parse_args([*required, "--session-tag=k=v=w", "--session-tag=e="]).session_tag
    assert tags == [("k", "v=w"), ("e", "")]
