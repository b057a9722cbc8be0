"""Names of the API: group, versions, resources, labels, and the names derived from an object.

Everything derived here is deterministic, so a restarted operator computes the same run id,
S3 prefix and copy Job name and finds what an earlier incarnation created.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

GROUP = "pinpoint.exports.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
EXPORTS = "pinpointexports"
SCHEDULES = "pinpointexportschedules"
MANAGER = "pinpoint-export-operator"
# What Kopf adds to every export and schedule while their daemons run.
FINALIZER = f"{GROUP}/finalizer"
# On each copy Job until the operator has read its result (the copier's summary lives in its
# pods' termination messages): a Job deleted before that (by its TTL, by hand) waits for it.
COPY_JOB_FINALIZER = f"{GROUP}/copy-result"

# A PinpointExport's phases after which nothing more happens to it.
TERMINAL_PHASES = ("Succeeded", "Failed")
# The reasons a PinpointExport's conditions can carry (all three carry the same one): its
# progress, its success, and every error it retries or fails with. A bounded label of
# /metrics; tests/unit/test_reasons.py holds it to the reasons the code sets.
EXPORT_REASONS = frozenset(
    {
        # progress and success
        "Creating",
        "Exporting",
        "Copying",
        "Succeeded",
        "EndpointCountMismatch",
        # decided by the operator
        "ClaimNotFound",
        "ServiceAccountNotFound",
        "CredentialsSecretNotFound",
        "InvalidCredentialsSecret",
        "CopierImageNotAllowed",
        "RoleNotAllowed",
        "CopyJobInvalid",
        "CopyJobNameTaken",
        "PinpointJobFailed",
        "PiecesFailed",
        "CopyFailed",
        "ExportTimedOut",
        # Pinpoint, STS and the API server, as classified
        "Throttled",
        "ServiceUnavailable",
        "EndpointUnreachable",
        "UnexpectedError",
        "NotFound",
        "AccessDenied",
        "InvalidRequest",
        "UnexpectedResponse",
        "NoCredentials",
        "NoRegion",
        "InvalidSpec",
        "KubernetesUnavailable",
        "KubernetesRejected",
    }
)

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_EXPORT = f"{GROUP}/export"
LABEL_SCHEDULE = f"{GROUP}/schedule"
# On a schedule: any new value starts one run. On its exports: why each one exists.
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_SCHEDULED_AT = f"{GROUP}/scheduled-at"
ANNOTATION_TRIGGERED_BY = f"{GROUP}/triggered-by"

_MAX_NAME = 63  # a Job's name becomes a label value


def run_id(created: datetime, uid: str) -> str:
    """`20261128T190628Z-1a2b3c4d`: sortable by time, unique per object, stable across restarts."""
    return f"{created:%Y%m%dT%H%M%SZ}-{uid.replace('-', '')[:8]}"


def run_prefix(s3_url_prefix: str, namespace: str, name: str, run: str) -> str:
    """Where Pinpoint writes this run: never the user's prefix itself, so runs never mix."""
    base = s3_url_prefix if s3_url_prefix.endswith("/") else s3_url_prefix + "/"
    return f"{base}{namespace}/{name}/{run}/"


def schedule_run_name(schedule: str, at: datetime) -> str:
    """`<schedule>-<Unix minutes>`, as a CronJob names its Jobs: a restart finds the same name."""
    return f"{schedule}-{int(at.timestamp()) // 60}"


def copy_job_name(export_name: str) -> str:
    """`<export>-copy`, shortened with a hash when the export's name is long."""
    name = f"{export_name}-copy"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(export_name.encode()).hexdigest()[:8]
    return f"{export_name[: _MAX_NAME - len(digest) - 6].rstrip('-.')}-{digest}-copy"
