"""The Kubernetes adapter: status patches, the copy Job, the credentials Secret.

Blocking (the official client's transport); the reconciler runs these in threads. Objects
are plain dicts, as the API server sends them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.exports.copy_job import CONTAINER
from pinpoint_export_operator.exports.state import CopyJob, CopyJobMissing
from pinpoint_export_operator.exports.status import ExportStatus
from pinpoint_export_operator.runtime.adopt import Created, create_or_adopt
from pinpoint_export_operator.runtime.aws import StaticCredentials
from pinpoint_export_operator.runtime.errors import CloudError
from pinpoint_export_operator.runtime.kube_json import Json, KubeJson, namespaced

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class CredentialsError(Exception):
    def __init__(self, error: CloudError) -> None:
        super().__init__(error.message)
        self.error = error


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._kube = KubeJson(api_client)

    def patch_export_status(self, namespace: str, name: str, status: ExportStatus) -> None:
        self._kube.patch_status(
            namespaced(api.API_VERSION, namespace, api.EXPORTS, name), dict(status)
        )

    def ensure_copy_job(self, manifest: Json) -> CopyJob | CloudError:
        """Create the Job; if it exists already (a restart), adopt it if it is ours."""
        meta = manifest["metadata"]
        result = create_or_adopt(
            self._kube, namespaced("batch/v1", meta["namespace"], "jobs"), manifest
        )
        if result.outcome is Created.TAKEN:
            return CloudError(
                "CopyJobNameTaken",
                f"Job {meta['name']} exists and is not this export's; delete or rename it",
                transient=False,
            )
        if result.outcome is Created.ADOPTED:
            return _copy_job(result.object, summary=None)
        return CopyJob(name=meta["name"], created=True)

    def observe_copy_job(self, namespace: str, name: str) -> CopyJob | CopyJobMissing:
        try:
            job = self._kube.get(namespaced("batch/v1", namespace, "jobs", name))
        except client.ApiException as error:
            if error.status == 404:
                return CopyJobMissing(name)
            raise
        observed = _copy_job(job, summary=None)
        if observed.finished is None:
            return observed
        # The copier's one-line JSON summary is its termination message.
        pods = self._kube.get(
            namespaced("v1", namespace, "pods"), {"labelSelector": f"{JOB_NAME_LABEL}={name}"}
        )
        messages = [_termination(p) for p in pods["items"]]
        summary = next((m[1] for m in messages if m and m[0] == 0 and m[1] is not None), None)
        failure = next((m[2] for m in messages if m and m[0] != 0 and m[2]), "")
        return _copy_job(job, summary=summary, pod_failure=failure)

    def read_credentials(self, namespace: str, name: str) -> StaticCredentials:
        try:
            secret = self._kube.get(namespaced("v1", namespace, "secrets", name))
        except client.ApiException as error:
            if error.status == 404:
                # GitOps may create the Secret a moment later: retry rather than fail.
                raise CredentialsError(
                    CloudError(
                        "CredentialsSecretNotFound",
                        f"spec.credentials.secretRef: Secret {namespace}/{name} not found",
                        transient=True,
                    )
                ) from error
            raise
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not data.get(k)]
        if missing:
            raise CredentialsError(
                CloudError(
                    "InvalidCredentialsSecret",
                    f"spec.credentials.secretRef: Secret {namespace}/{name} "
                    f"lacks {', '.join(missing)}",
                    transient=False,
                )
            )
        return StaticCredentials(
            access_key_id=data["AWS_ACCESS_KEY_ID"],
            secret_access_key=data["AWS_SECRET_ACCESS_KEY"],
            session_token=data.get("AWS_SESSION_TOKEN"),
            source=f"{namespace}/{name}@{secret['metadata']['resourceVersion']}",
        )


def _copy_job(job: Json, summary: Json | None, pod_failure: str = "") -> CopyJob:
    status = job.get("status") or {}
    finished = None
    failure = ""
    for condition in status.get("conditions") or []:
        if condition["status"] != "True":
            continue
        if condition["type"] == "Complete":
            finished = "Complete"
        elif condition["type"] == "Failed":
            finished = "Failed"
            failure = f"{condition.get('reason')}: {condition.get('message')}"
    if pod_failure:
        failure = f"{failure}; copier said: {pod_failure}" if failure else pod_failure
    return CopyJob(
        name=job["metadata"]["name"],
        active=status.get("active") or 0,
        succeeded=status.get("succeeded") or 0,
        failed=status.get("failed") or 0,
        finished=finished,  # type: ignore[arg-type]
        failure_message=failure,
        summary=summary,
    )


def _termination(pod: Json) -> tuple[int, dict[str, Any] | None, str] | None:
    """(exit code, parsed JSON summary or None, raw message) of the copier container."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if container["name"] != CONTAINER or not terminated:
            continue
        message = (terminated.get("message") or "").strip()
        try:
            parsed = json.loads(message.splitlines()[-1]) if message else None
        except ValueError:
            parsed = None
        return terminated["exitCode"], parsed if isinstance(parsed, dict) else None, message
    return None
