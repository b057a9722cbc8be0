"""The Kubernetes adapter: status patches, the copy Job, the credentials Secret.

Blocking (the official client); the reconciler runs these in threads.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.aws import StaticCredentials
from pinpoint_export_operator.copy_job import CONTAINER
from pinpoint_export_operator.export_state import CloudError, CopyJob, CopyJobMissing

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class CredentialsError(Exception):
    def __init__(self, error: CloudError) -> None:
        super().__init__(error.message)
        self.error = error


class Kube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)

    def patch_export_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self._custom.patch_namespaced_custom_object_status(
            api.GROUP, api.VERSION, namespace, api.EXPORTS, name, {"status": status}
        )

    def ensure_copy_job(self, manifest: dict[str, Any]) -> CopyJob:
        """Create the Job; if it exists already (a restart), adopt it if it is ours."""
        meta = manifest["metadata"]
        try:
            # Manifests are plain data; the client sends a dict body as it is.
            self._batch.create_namespaced_job(meta["namespace"], manifest)  # type: ignore[arg-type]
        except client.ApiException as error:
            if error.status != 409:
                raise
            existing = self._batch.read_namespaced_job(meta["name"], meta["namespace"])
            owners = (existing.metadata and existing.metadata.owner_references) or []
            if not any(o.uid == meta["ownerReferences"][0]["uid"] for o in owners):
                raise RuntimeError(
                    f"Job {meta['name']} exists and belongs to something else; delete or rename it"
                ) from error
            return _copy_job(existing, summary=None)
        return CopyJob(name=meta["name"], created=True)

    def observe_copy_job(self, namespace: str, name: str) -> CopyJob | CopyJobMissing:
        try:
            job = self._batch.read_namespaced_job(name, namespace)
        except client.ApiException as error:
            if error.status == 404:
                return CopyJobMissing(name)
            raise
        observed = _copy_job(job, summary=None)
        if observed.finished is None:
            return observed
        # The copier's one-line JSON summary is its termination message.
        pods = self._core.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME_LABEL}={name}")
        messages = [_termination(p) for p in pods.items]
        summary = next((m[1] for m in messages if m and m[0] == 0 and m[1] is not None), None)
        failure = next((m[2] for m in messages if m and m[0] != 0 and m[2]), "")
        return _copy_job(job, summary=summary, pod_failure=failure)

    def read_credentials(self, namespace: str, name: str) -> StaticCredentials:
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
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
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
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
            source=f"{namespace}/{name}@{secret.metadata and secret.metadata.resource_version}",
        )


def _copy_job(job: Any, summary: dict[str, Any] | None, pod_failure: str = "") -> CopyJob:
    status = job.status
    finished = None
    failure = ""
    for condition in status.conditions or []:
        if condition.status != "True":
            continue
        if condition.type == "Complete":
            finished = "Complete"
        elif condition.type == "Failed":
            finished = "Failed"
            failure = f"{condition.reason}: {condition.message}"
    if pod_failure:
        failure = f"{failure}; copier said: {pod_failure}" if failure else pod_failure
    return CopyJob(
        name=job.metadata.name,
        active=status.active or 0,
        succeeded=status.succeeded or 0,
        failed=status.failed or 0,
        finished=finished,  # type: ignore[arg-type]
        failure_message=failure,
        summary=summary,
    )


def _termination(pod: Any) -> tuple[int, dict[str, Any] | None, str] | None:
    """(exit code, parsed JSON summary or None, raw message) of the copier container."""
    for container in (pod.status and pod.status.container_statuses) or []:
        terminated = container.state and container.state.terminated
        if container.name != CONTAINER or not terminated:
            continue
        message = (terminated.message or "").strip()
        try:
            parsed = json.loads(message.splitlines()[-1]) if message else None
        except ValueError:
            parsed = None
        return terminated.exit_code, parsed if isinstance(parsed, dict) else None, message
    return None
