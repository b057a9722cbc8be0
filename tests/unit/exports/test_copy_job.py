"""The copy Job manifest: restricted-compliant, deterministic, credentials by reference."""

from __future__ import annotations

from typing import Any

import pytest

from pinpoint_export_operator import cli
from pinpoint_export_operator.config import CopierDefaults
from pinpoint_export_operator.copier.exitcodes import PERMANENT_EXIT_CODES
from pinpoint_export_operator.exports import copy_job

from .test_state import make_export

DEFAULTS = CopierDefaults(image="example/pinpoint-export-operator:1", region="eu-west-1")


def pod(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def test_pod_passes_pod_security_restricted() -> None:
    spec = pod(copy_job.build(make_export(), DEFAULTS))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # The copier writes as 65532 into the claim: a group it can write where storage applies
    # fsGroup, set only when the claim's root is not already so.
    assert (spec["securityContext"]["fsGroup"], spec["securityContext"]["fsGroupChangePolicy"]) == (
        65532,
        "OnRootMismatch",
    )
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no variables naming the namespace's Services
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert all("hostPath" not in v for v in spec["volumes"])


def test_job_is_owned_named_and_fails_fast_on_permanent_errors() -> None:
    export = make_export()
    manifest = copy_job.build(export, DEFAULTS)
    assert manifest["metadata"]["name"] == "nightly-copy"
    (owner,) = manifest["metadata"]["ownerReferences"]
    assert owner["uid"] == export.uid and owner["controller"] is True
    # Kept until the operator read its result, whoever deletes it (its TTL, say) first.
    assert manifest["metadata"]["finalizers"] == ["pinpoint.exports.dev/copy-result"]
    permanent, disrupted = manifest["spec"]["podFailurePolicy"]["rules"]
    assert permanent["action"] == "FailJob"
    assert permanent["onExitCodes"]["values"] == list(PERMANENT_EXIT_CODES)
    # An evicted or preempted pod is not the copy's failure: it costs no retry.
    assert disrupted == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert manifest["spec"]["backoffLimit"] == 3


def test_copier_arguments() -> None:
    export = make_export(copy={"decompress": True}, s3EndpointUrl="http://s3.local:9000")
    (container,) = pod(copy_job.build(export, DEFAULTS))["containers"]
    assert container["args"] == [
        "copy",
        f"--source={export.s3_url}",
        "--dest=/data/pinpoint/20261128T100000Z-1a2b3c4d",
        "--region=eu-west-1",
        "--endpoint-url=http://s3.local:9000",
        "--decompress",
    ]
    assert container["image"] == DEFAULTS.image
    assert container["env"] == []


def test_secret_credentials_are_referenced_never_copied() -> None:
    export = make_export(credentials={"secretRef": {"name": "aws"}})
    (container,) = pod(copy_job.build(export, DEFAULTS))["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert set(refs) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert all(r["name"] == "aws" for r in refs.values())
    assert refs["AWS_SESSION_TOKEN"]["optional"] is True
    assert all("value" not in e for e in container["env"])


def test_user_options_pass_through() -> None:
    options = {
        "image": "mine:2",
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 60,
        "serviceAccountName": "copier",
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "batch", "operator": "Exists"}],
        "resources": {"limits": {"memory": "1Gi"}},
    }
    manifest = copy_job.build(make_export(copy=options), DEFAULTS)
    spec = pod(manifest)
    assert spec["containers"][0]["image"] == "mine:2"
    assert spec["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}
    assert spec["serviceAccountName"] == "copier"
    assert spec["nodeSelector"] == {"disk": "ssd"}
    assert spec["tolerations"] == options["tolerations"]
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["activeDeadlineSeconds"] == 600
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 60


def test_the_copier_accepts_every_argument_the_job_gives_it() -> None:
    export = make_export(
        copy={"decompress": True},
        s3EndpointUrl="http://s3.local:9000",
        credentials={"assumeRoleArn": "arn:aws:iam::123456789012:role/reader"},
        destination={"claimName": "exports", "path": "pinpoint", "keepRuns": 7},
    )
    (container,) = pod(copy_job.build(export, DEFAULTS))["containers"]
    parser = cli.build_parser("pinpoint-export-operator", None, cli.COMMANDS, container["args"])
    args = parser.parse_args(container["args"])
    assert f"s3://{args.source.bucket}/{args.source.prefix}" == export.s3_url
    assert args.assume_role_arn == "arn:aws:iam::123456789012:role/reader"
    assert args.keep_runs == 7


def test_keep_runs_is_passed_only_when_set() -> None:
    (plain,) = pod(copy_job.build(make_export(), DEFAULTS))["containers"]
    assert not any(arg.startswith("--keep-runs") for arg in plain["args"])


def test_only_allowed_copier_images_may_be_chosen() -> None:
    allowing = CopierDefaults(image="example/ppe:1", allowed_images=("registry.corp/",))
    assert copy_job.image_refusal(make_export(), allowing) is None
    assert copy_job.image_refusal(make_export(copy={"image": "example/ppe:1"}), allowing) is None
    chosen = make_export(copy={"image": "registry.corp/ppe:2"})
    assert copy_job.image_refusal(chosen, allowing) is None
    refusal = copy_job.image_refusal(make_export(copy={"image": "evil/miner:1"}), allowing)
    assert refusal is not None and "spec.copy.image" in refusal
    assert copy_job.image_refusal(chosen, DEFAULTS) is not None  # none allowed by default


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("registry.corp/ppe:2", True),
        ("registry.corp:5000/ppe:2", True),
        ("registry.corp.evil.io/ppe:2", False),  # a raw string prefix would admit this
        ("registry.corpus/ppe:2", False),
        ("registry.corp", True),
    ],
)
def test_allowed_images_match_at_a_path_boundary(image: str, allowed: bool) -> None:
    defaults = CopierDefaults(image="example/ppe:1", allowed_images=("registry.corp",))
    refusal = copy_job.image_refusal(make_export(copy={"image": image}), defaults)
    assert (refusal is None) is allowed


def test_the_copy_stage_has_a_deadline_by_default() -> None:
    manifest = copy_job.build(make_export(), DEFAULTS)
    assert manifest["spec"]["activeDeadlineSeconds"] == copy_job.COPY_DEADLINE


def test_a_run_that_exported_endpoints_must_list_at_least_one_piece() -> None:
    (empty,) = pod(copy_job.build(make_export(), DEFAULTS))["containers"]
    assert not [a for a in empty["args"] if a.startswith("--expect-objects")]
    (some,) = pod(copy_job.build(make_export(), DEFAULTS, exported_endpoints=5))["containers"]
    assert "--expect-objects=1" in some["args"]
