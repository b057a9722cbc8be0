"""The copy Job's manifest, built as plain data from the export (no I/O).

The pod passes Pod Security `restricted`: non-root, read-only root filesystem, no privilege
escalation, all capabilities dropped, RuntimeDefault seccomp. It has no ServiceAccount token:
the copier never talks to Kubernetes. Credentials reach it by secretKeyRef, never copied; an
assumed role by the copier's arguments (role, session name, ExternalId, session tags), as the
operator assumes it. What platform teams shape (pull secrets, labels, annotations, priority,
affinity) comes from spec.copy, else the operator's defaults; the operator's own labels win.
"""

from __future__ import annotations

from typing import Any

from pinpoint_export_operator import api
from pinpoint_export_operator.config import CopierDefaults, is_reserved_label
from pinpoint_export_operator.copier.exitcodes import PERMANENT_EXIT_CODES
from pinpoint_export_operator.exports import tenancy
from pinpoint_export_operator.exports.steps import Export
from pinpoint_export_operator.runtime.aws import AssumeRole
from pinpoint_export_operator.runtime.objects import controller_reference

CONTAINER = "copier"
DATA_MOUNT = "/data"
NONROOT_UID = 65532
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
COPY_DEADLINE = 21600  # seconds, when spec.copy.activeDeadlineSeconds is not set


def image_refusal(export: Export, defaults: CopierDefaults) -> str | None:
    """Why the export's copy.image may not run, or None if it may."""
    image = export.spec.get("copy", {}).get("image")
    if (
        not image
        or image == defaults.image
        or any(_under(image, prefix) for prefix in defaults.allowed_images)
    ):
        return None
    allowed = ", ".join(defaults.allowed_images) or "none besides the default"
    return (
        f"spec.copy.image {image!r} is not allowed by the operator "
        f"(--allowed-copier-images: {allowed})"
    )


def _under(image: str, prefix: str) -> bool:
    """Whether `image` is `prefix` itself or lies under it at a path boundary: the prefix
    `registry.corp` admits `registry.corp/x`, never `registry.corp.evil.io/x`."""
    if prefix.endswith(("/", ":", "@")):
        return image.startswith(prefix)
    return image == prefix or image.startswith((f"{prefix}/", f"{prefix}:", f"{prefix}@"))


def build(export: Export, defaults: CopierDefaults, exported_endpoints: int = 0) -> dict[str, Any]:
    """The Job; `exported_endpoints` is Pinpoint's totalProcessed: if it exported any, the
    copier refuses (retryably) a listing of the run that finds no piece at all, since S3
    listings may lag, rather than publish an empty run."""
    spec = export.spec
    options = spec.get("copy", {})
    name = api.copy_job_name(export.name)
    labels = {
        api.LABEL_MANAGED_BY: api.MANAGER,
        api.LABEL_EXPORT: export.name,
    }
    role = tenancy.assume_role(export, defaults.assume_role)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "fsGroup": NONROOT_UID,
            # Where the storage applies fsGroup, the claim's files are re-owned only when its
            # root is not already the group's, not at every copy pod's start.
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": options.get("image") or defaults.image,
                "args": _copier_args(export, defaults, role, exported_endpoints),
                "env": _env(spec, role),
                "resources": options.get(
                    "resources",
                    {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                ),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [{"name": "destination", "mountPath": DATA_MOUNT}],
            }
        ],
        "volumes": [
            {
                "name": "destination",
                "persistentVolumeClaim": {"claimName": spec["destination"]["claimName"]},
            }
        ],
    }
    for key in ("serviceAccountName", "nodeSelector", "tolerations"):
        if key in options:
            pod_spec[key] = options[key]
    pod_spec.update(_shaping(options, defaults))
    job_spec: dict[str, Any] = {
        "backoffLimit": options.get("backoffLimit", 3),
        # A permanent failure (bad credentials, hostile keys, ...) fails the Job at once
        # instead of spending its backoffLimit.
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": CONTAINER,
                        "operator": "In",
                        "values": list(PERMANENT_EXIT_CODES),
                    },
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {"metadata": _pod_metadata(options, defaults, labels), "spec": pod_spec},
    }
    # A copy that cannot start (no claim, no image, no node) fails at the deadline instead of
    # waiting forever.
    job_spec["activeDeadlineSeconds"] = options.get("activeDeadlineSeconds", COPY_DEADLINE)
    if "ttlSecondsAfterFinished" in options:
        job_spec["ttlSecondsAfterFinished"] = options["ttlSecondsAfterFinished"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": export.namespace,
            "labels": labels,
            "ownerReferences": [
                controller_reference(api.API_VERSION, "PinpointExport", export.name, export.uid)
            ],
            # Its TTL may delete it while no operator runs: kept until its result is read.
            "finalizers": [api.COPY_JOB_FINALIZER],
        },
        "spec": job_spec,
    }


def _pod_metadata(
    options: dict[str, Any], defaults: CopierDefaults, labels: dict[str, str]
) -> dict[str, Any]:
    """Labels: the defaults, then spec.copy.podLabels, then the operator's own (which nothing
    overrides, nor the Job controller's); annotations: the defaults, then the spec's."""
    chosen = {**defaults.pod_labels, **options.get("podLabels", {})}
    metadata: dict[str, Any] = {
        "labels": {**{k: v for k, v in chosen.items() if not is_reserved_label(k)}, **labels}
    }
    annotations = {**defaults.pod_annotations, **options.get("podAnnotations", {})}
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def _shaping(options: dict[str, Any], defaults: CopierDefaults) -> dict[str, Any]:
    """imagePullSecrets, priorityClassName and affinity: spec.copy's if set (even empty),
    else the operator's default, else none."""
    default_secrets = [{"name": secret} for secret in defaults.image_pull_secrets]
    chosen = {
        "imagePullSecrets": options.get("imagePullSecrets", default_secrets),
        "priorityClassName": options.get("priorityClassName", defaults.priority_class_name),
        "affinity": options.get("affinity", dict(defaults.affinity)),
    }
    return {key: value for key, value in chosen.items() if value}


def _copier_args(
    export: Export, defaults: CopierDefaults, role: AssumeRole | None, exported_endpoints: int
) -> list[str]:
    spec = export.spec
    args = ["copy", f"--source={export.s3_url}", f"--dest={DATA_MOUNT}/{export.output_path}"]
    if exported_endpoints:
        # At least one piece: how Pinpoint's pieces map to objects is not documented.
        args.append("--expect-objects=1")
    region = spec.get("region") or defaults.region
    if region:
        args.append(f"--region={region}")
    endpoint = spec.get("s3EndpointUrl") or defaults.s3_endpoint_url
    if endpoint:
        args.append(f"--endpoint-url={endpoint}")
    if role is not None:
        args += [f"--assume-role-arn={role.role_arn}", f"--role-session-name={role.session_name}"]
        if role.external_id:
            args.append(f"--external-id={role.external_id}")
        args += [f"--session-tag={key}={value}" for key, value in role.tags]
    if spec.get("copy", {}).get("decompress"):
        args.append("--decompress")
    keep_runs = spec["destination"].get("keepRuns")
    if keep_runs:
        args.append(f"--keep-runs={keep_runs}")
    return args


def _env(spec: dict[str, Any], role: AssumeRole | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if role is not None and role.sts_endpoint_url:
        # botocore's own variable: the copier reaches STS where the operator does.
        env.append({"name": "AWS_ENDPOINT_URL_STS", "value": role.sts_endpoint_url})
    secret = spec.get("credentials", {}).get("secretRef", {}).get("name")
    if not secret:
        return env
    return env + [
        {
            "name": key,
            "valueFrom": {
                "secretKeyRef": {
                    "name": secret,
                    "key": key,
                    "optional": key == "AWS_SESSION_TOKEN",
                }
            },
        }
        for key in SECRET_KEYS
    ]
