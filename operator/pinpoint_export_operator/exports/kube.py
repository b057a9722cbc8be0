"""The Kubernetes adapter: status patches, the copy Job, the credentials Secret.

Blocking (the official client's transport); the reconciler runs these in threads. Objects
are plain dicts, as the API server sends them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import replace
from typing import cast

from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.copier.manifest import CopierSummary
from pinpoint_export_operator.exports.copy_job import CONTAINER, SECRET_KEYS
from pinpoint_export_operator.exports.status import ExportStatus
from pinpoint_export_operator.exports.steps import CopyJob, CopyJobMissing
from pinpoint_export_operator.runtime.adopt import Created, create_or_adopt
from pinpoint_export_operator.runtime.aws import StaticCredentials
from pinpoint_export_operator.runtime.errors import CloudError, kubernetes_error
from pinpoint_export_operator.runtime.kube_json import Json, KubeJson, namespaced

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# What the preflight checks exist, the spec field that names each, and the reason if not.
FIELD_OF = {
    "persistentvolumeclaims": "spec.destination.claimName",
    "serviceaccounts": "spec.copy.serviceAccountName",
}
REASON_OF = {
    "persistentvolumeclaims": "ClaimNotFound",
    "serviceaccounts": "ServiceAccountNotFound",
}
# A claim or ServiceAccount found is taken to exist this long: hundreds of exports started at
# once into one claim asked the API server the same question hundreds of times. (One deleted
# meanwhile is still reported: its copy pod waits, and the status says why.)
EXISTS_TTL = 30.0


class CredentialsError(Exception):
    def __init__(self, error: CloudError) -> None:
        super().__init__(error.message)
        self.error = error


class Kube:
    def __init__(self, kube: KubeJson) -> None:
        self._kube = kube
        self._found: dict[str, float] = {}  # path -> monotonic time it was found
        self._found_lock = threading.Lock()

    def patch_export_status(
        self,
        namespace: str,
        name: str,
        status: ExportStatus,
        resource_version: str | None = None,
    ) -> str:
        """Merge-patch the status; the object's new resourceVersion. With `resource_version`,
        the write succeeds only if the object is still at that version (409 Conflict if not):
        the claim that makes one replica, and only one, create the Pinpoint job."""
        body: Json = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        path = namespaced(api.API_VERSION, namespace, api.EXPORTS, name)
        patched = self._kube.merge_patch(f"{path}/status", body)
        return str(patched["metadata"]["resourceVersion"])

    def read_export(self, namespace: str, name: str) -> Json:
        return self._kube.get(namespaced(api.API_VERSION, namespace, api.EXPORTS, name))

    def preflight_copy_job(self, manifest: Json) -> CloudError | None:
        """What would keep the copy Job from running, found before Pinpoint runs: the Job as
        the API server would refuse it (a server-side dry run: names, labels, selectors,
        resources), or a claim or ServiceAccount that does not exist (yet: GitOps may be
        about to create it, so that is worth waiting for, not failing)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            self._kube.request(
                "POST",
                namespaced("batch/v1", namespace, "jobs"),
                query={"dryRun": "All"},
                body=manifest,
            )
        except client.ApiException as error:
            if error.status in (400, 422):
                refused = kubernetes_error(error, "copy Job")
                return CloudError("CopyJobInvalid", refused.message, transient=False)
            raise
        pod = manifest["spec"]["template"]["spec"]
        needed = [
            ("persistentvolumeclaims", v["persistentVolumeClaim"]["claimName"])
            for v in pod["volumes"]
            if "persistentVolumeClaim" in v
        ]
        if pod.get("serviceAccountName"):
            needed.append(("serviceaccounts", pod["serviceAccountName"]))
        for resource, name in needed:
            try:
                self._exists(namespaced("v1", namespace, resource, name))
            except client.ApiException as error:
                if error.status != 404:
                    raise
                field = FIELD_OF[resource]
                message = f"{field}: {resource[:-1]} {namespace}/{name} not found"
                return CloudError(REASON_OF[resource], message, transient=True)
        return None

    def _exists(self, path: str) -> None:
        """Raises the API server's error unless the object was found (now, or recently)."""
        with self._found_lock:
            found = self._found.get(path)
            if found is not None and time.monotonic() - found < EXISTS_TTL:
                return
        self._kube.get(path)
        now = time.monotonic()
        with self._found_lock:
            for old in [p for p, at in self._found.items() if now - at >= EXISTS_TTL]:
                del self._found[old]
            self._found[path] = now

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
            # Observed as any other: it may have finished, or be being deleted, meanwhile.
            return self._observe(meta["namespace"], result.object)
        return CopyJob(name=meta["name"], created=True)

    def observe_copy_job(
        self, namespace: str, name: str, job: Json | None = None, look_at_pods: bool = True
    ) -> CopyJob | CopyJobMissing:
        """The Job, and its pods when they can say more: the copier's summary once the Job
        finished; while it runs, why no pod is ready, if `look_at_pods` (listing the pods of
        every running Job at every poll was the operator's most frequent call at 500
        exports). `job`: the Job as a watch event just delivered it (not read again)."""
        if job is None:
            try:
                job = self._kube.get(namespaced("batch/v1", namespace, "jobs", name))
            except client.ApiException as error:
                if error.status == 404:
                    return CopyJobMissing(name)
                raise
        return self._observe(namespace, job, look_at_pods)

    def _observe(self, namespace: str, job: Json, look_at_pods: bool = True) -> CopyJob:
        name = job["metadata"]["name"]
        observed = _copy_job(job, summary=None)
        if observed.finished is None and (observed.ready or not look_at_pods):
            return replace(observed, waiting="" if observed.ready else None)
        pods = self._kube.get(
            namespaced("v1", namespace, "pods"), {"labelSelector": f"{JOB_NAME_LABEL}={name}"}
        )["items"]
        if observed.finished is None:
            # Why nothing runs yet: unschedulable, image pull, bad config.
            return replace(observed, waiting=next(filter(None, map(_waiting, pods)), ""))
        # The copier's one-line JSON summary is its termination message.
        messages = [_termination(p) for p in pods]
        summary = next((m[1] for m in messages if m and m[0] == 0 and m[1] is not None), None)
        failure = next((_copier_said(m[1], m[2]) for m in messages if m and m[0] != 0 and m[2]), "")
        return replace(_copy_job(job, summary, failure), pods_gone=not pods)

    def release_copy_job(
        self, namespace: str, name: str, finalizers: list[str] | None = None
    ) -> None:
        """Remove api.COPY_JOB_FINALIZER from the Job, and only it: a JSON patch that tests
        the entry it removes, so that the others (the garbage collector's foregroundDeletion)
        stay. `finalizers`: the Job's as last seen (else read). Nothing if the Job or the
        finalizer is gone already."""
        path = namespaced("batch/v1", namespace, "jobs", name)
        for _ in range(3):  # the list changed under us (422): read it again
            if finalizers is None:
                try:
                    finalizers = self._kube.get(path)["metadata"].get("finalizers") or []
                except client.ApiException as error:
                    if error.status == 404:
                        return
                    raise
            if api.COPY_JOB_FINALIZER not in finalizers:
                return
            index = finalizers.index(api.COPY_JOB_FINALIZER)
            entry = f"/metadata/finalizers/{index}"
            patch = [
                {"op": "test", "path": entry, "value": api.COPY_JOB_FINALIZER},
                {"op": "remove", "path": entry},
            ]
            try:
                self._kube.json_patch(path, patch)
                return
            except client.ApiException as error:
                if error.status == 404:
                    return
                if error.status != 422:
                    raise
            finalizers = None
        raise RuntimeError(f"Job {name}: its finalizers kept changing")

    def read_credentials(self, namespace: str, name: str) -> StaticCredentials:
        """The keys of the export's Secret: only the three it may hold are read, stripped of
        surrounding whitespace (a trailing newline from `echo`), and no error ever carries a
        byte of them: what is wrong is named by key."""
        where = f"spec.credentials.secretRef: Secret {namespace}/{name}"
        try:
            secret = self._kube.get(namespaced("v1", namespace, "secrets", name))
        except client.ApiException as error:
            if error.status == 404:
                # GitOps may create the Secret a moment later: retry rather than fail.
                raise CredentialsError(
                    CloudError("CredentialsSecretNotFound", f"{where} not found", transient=True)
                ) from None
            raise
        data = secret.get("data") or {}
        values: dict[str, str] = {}
        for key in SECRET_KEYS:
            if key not in data:
                continue
            try:
                value = base64.b64decode(data[key], validate=True).decode("utf-8").strip()
            except (ValueError, UnicodeDecodeError):
                value = ""
            if not value or not value.isascii() or not value.isprintable():
                raise CredentialsError(
                    CloudError(
                        "InvalidCredentialsSecret",
                        f"{where}: key {key} is not a printable ASCII value",
                        transient=False,
                    )
                ) from None
            values[key] = value
        missing = [k for k in SECRET_KEYS[:2] if k not in values]
        if missing:
            raise CredentialsError(
                CloudError(
                    "InvalidCredentialsSecret",
                    f"{where} lacks {', '.join(missing)}",
                    transient=False,
                )
            )
        return StaticCredentials(
            access_key_id=values["AWS_ACCESS_KEY_ID"],
            secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
            session_token=values.get("AWS_SESSION_TOKEN"),
            source=f"{namespace}/{name}@{secret['metadata']['resourceVersion']}",
        )


def copy_job_status(job: Json) -> CopyJob:
    """What a copy Job says of itself, its pods unread."""
    return _copy_job(job, summary=None)


def _copy_job(job: Json, summary: CopierSummary | None, pod_failure: str = "") -> CopyJob:
    status = job.get("status") or {}
    finished = None
    failure = ""
    for condition in status.get("conditions") or []:
        if condition["status"] != "True":
            continue
        # Kubernetes 1.31+ says how a Job ends (SuccessCriteriaMet, FailureTarget) in one update
        # and that it ended (Complete, Failed) in the next, once its pods are gone: the first
        # is enough, and the export's status is written once rather than once for each.
        if condition["type"] in ("Complete", "SuccessCriteriaMet"):
            finished = "Complete"
        elif condition["type"] in ("Failed", "FailureTarget"):
            finished = "Failed"
            failure = f"{condition.get('reason')}: {condition.get('message')}"
    if pod_failure:
        # The Job's own message only repeats the pod's exit code: its reason, then the copier's
        # words, so that what to change fits in the status message.
        reason = failure.split(":", 1)[0]
        failure = f"{reason}; copier said: {pod_failure}" if reason else pod_failure
    meta = job["metadata"]
    uncounted = status.get("uncountedTerminatedPods") or {}
    return CopyJob(
        name=meta["name"],
        deleting=bool(meta.get("deletionTimestamp")),
        creation_timestamp=meta.get("creationTimestamp"),
        finalizer=api.COPY_JOB_FINALIZER in (meta.get("finalizers") or ()),
        active=status.get("active") or 0,
        # Pods that ended are counted in `uncountedTerminatedPods` first (so at
        # SuccessCriteriaMet / FailureTarget), in `succeeded` / `failed` in a later update.
        succeeded=(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or ()),
        failed=(status.get("failed") or 0) + len(uncounted.get("failed") or ()),
        ready=status.get("ready") or 0,
        finished=finished,  # type: ignore[arg-type]
        failure_message=failure,
        summary=summary,
    )


def _copier_said(parsed: CopierSummary | None, message: str) -> str:
    """A failed copier's termination message in words (`InsufficientSpace (exit 3): the copy
    needs ...`), or as it is if it is not the copier's JSON (e.g. a crash before it wrote one)."""
    if parsed is None or "error" not in parsed:
        return message
    return f"{parsed['error']} (exit {parsed.get('exitCode')}): {parsed.get('message', '')}"


def _termination(pod: Json) -> tuple[int, CopierSummary | None, str] | None:
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
        summary = cast(CopierSummary, parsed) if isinstance(parsed, dict) else None
        return terminated["exitCode"], summary, message
    return None


def _waiting(pod: Json) -> str:
    """Why a pod of the copy Job is not running, in the kubelet's and scheduler's words."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason')}: {condition.get('message', '')}".strip(": ")
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return ""
