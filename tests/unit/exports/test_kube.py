"""Reading a copy Job and its pods, as the API server sends them, into what export_state sees."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.exports.copy_job import CONTAINER
from pinpoint_export_operator.exports.kube import (
    CredentialsError,
    Kube,
    _copier_said,
    _copy_job,
    _termination,
    _waiting,
)
from pinpoint_export_operator.exports.steps import CopyJob
from pinpoint_export_operator.runtime.kube_json import namespaced


def job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "copy-x"}, "status": status}


def pod(name: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {"status": {"containerStatuses": [{"name": name, "state": state}]}}


def test_a_running_job_is_not_finished() -> None:
    observed = _copy_job(job({"active": 1}), summary=None)
    assert (observed.name, observed.active, observed.finished) == ("copy-x", 1, None)


def test_a_complete_job_carries_the_copiers_summary() -> None:
    status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    observed = _copy_job(job(status), summary={"files": 2})
    assert (observed.finished, observed.succeeded, observed.summary) == (
        "Complete",
        1,
        {"files": 2},
    )


@pytest.mark.parametrize(
    ("ending", "finished"),
    [("SuccessCriteriaMet", "Complete"), ("FailureTarget", "Failed")],
)
def test_a_job_is_finished_as_soon_as_kubernetes_says_how_it_ends(
    ending: str, finished: str
) -> None:
    """The update before the terminal condition: its pod has ended, `active` is 0 already, and
    the pod is not counted yet (its uid is in `uncountedTerminatedPods`)."""
    outcome = "succeeded" if finished == "Complete" else "failed"
    status = {
        "uncountedTerminatedPods": {outcome: ["uid-1"]},
        "conditions": [{"type": ending, "status": "True"}],
    }
    observed = _copy_job(job(status), summary=None)
    assert observed.finished == finished
    assert (observed.active, getattr(observed, outcome)) == (0, 1)


def test_a_failed_job_says_why_with_the_copiers_words() -> None:
    failed = {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    }
    stale = {"type": "Complete", "status": "False"}
    observed = _copy_job(job({"failed": 3, "conditions": [stale, failed]}), None, "disk full")
    assert observed.finished == "Failed"
    assert observed.failure_message == ("BackoffLimitExceeded; copier said: disk full")


def test_the_copiers_failure_in_words() -> None:
    parsed = {"error": "InsufficientSpace", "exitCode": 3, "message": "needs 10 bytes"}
    assert _copier_said(parsed, "{...}") == "InsufficientSpace (exit 3): needs 10 bytes"
    assert _copier_said(None, "Traceback ...") == "Traceback ..."


def test_termination_of_the_copier_container_only() -> None:
    message = 'resuming\n{"files": 1, "bytes": 10}\n'
    assert _termination(pod(CONTAINER, {"exitCode": 0, "message": message})) == (
        0,
        {"files": 1, "bytes": 10},
        message.strip(),
    )
    assert _termination(pod(CONTAINER, {"exitCode": 3, "message": "not json"})) == (
        3,
        None,
        "not json",
    )
    assert _termination(pod("sidecar", {"exitCode": 0})) is None
    assert _termination(pod(CONTAINER, None)) is None
    assert _termination({"status": {}}) is None


def test_paths_of_core_and_group_resources() -> None:
    assert namespaced("v1", "ns", "secrets", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert namespaced("batch/v1", "ns", "jobs") == "/apis/batch/v1/namespaces/ns/jobs"


class FakeKubeJson:
    """Answers GETs from a dict of path -> object; 404 for the rest."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        if path not in self.objects:
            raise client.ApiException(status=404, reason="Not Found")
        return self.objects[path]


def kube_with_secret(data: dict[str, bytes]) -> Kube:
    kube = Kube.__new__(Kube)
    secret = {
        "metadata": {"resourceVersion": "7"},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    kube._kube = FakeKubeJson({namespaced("v1", "ns", "secrets", "keys"): secret})  # type: ignore[assignment]
    return kube


def test_secret_values_are_stripped() -> None:
    kube = kube_with_secret(
        {
            "AWS_ACCESS_KEY_ID": b"AKIAEXAMPLE\n",
            "AWS_SECRET_ACCESS_KEY": b" s3cr3t \n",
            "AWS_SESSION_TOKEN": b"token\n",
            "UNRELATED": b"\xff\xfe not read",
        }
    )
    credentials = kube.read_credentials("ns", "keys")
    assert (credentials.access_key_id, credentials.secret_access_key) == ("AKIAEXAMPLE", "s3cr3t")
    assert credentials.session_token == "token"


@pytest.mark.parametrize("value", [b"\xff\xfe\x00binary", b"two\nlines", b"   "])
def test_a_bad_secret_value_is_named_by_key_and_never_shown(value: bytes) -> None:
    kube = kube_with_secret({"AWS_ACCESS_KEY_ID": b"AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": value})
    with pytest.raises(CredentialsError) as raised:
        kube.read_credentials("ns", "keys")
    error = raised.value.error
    assert (error.reason, error.transient) == ("InvalidCredentialsSecret", False)
    assert "AWS_SECRET_ACCESS_KEY" in error.message
    for fragment in (value.decode("latin-1").strip(), repr(value), "binary", "lines"):
        if fragment:
            assert fragment not in error.message


def test_a_missing_secret_is_waited_for() -> None:
    kube = kube_with_secret({})
    with pytest.raises(CredentialsError) as raised:
        kube.read_credentials("ns", "other")
    assert raised.value.error.transient


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": 'persistentvolumeclaim "exports" not found',
                    }
                ]
            },
            'Unschedulable: persistentvolumeclaim "exports" not found',
        ),
        (
            {
                "containerStatuses": [
                    {
                        "name": CONTAINER,
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": "Back-off pulling image",
                            }
                        },
                    }
                ]
            },
            "ImagePullBackOff: Back-off pulling image",
        ),
        (
            {
                "containerStatuses": [
                    {"name": CONTAINER, "state": {"waiting": {"reason": "ContainerCreating"}}}
                ]
            },
            "",
        ),
        ({"phase": "Running"}, ""),
    ],
)
def test_why_a_copy_pod_waits(status: dict[str, Any], reason: str) -> None:
    assert _waiting({"status": status}) == reason


class CountingKubeJson(FakeKubeJson):
    """FakeKubeJson that accepts any dry run and counts GETs by path."""

    def __init__(self, objects: dict[str, Any]) -> None:
        super().__init__(objects)
        self.gets: list[str] = []

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        self.gets.append(path)
        return super().get(path, query)

    def request(self, method: str, path: str, **_: Any) -> Any:
        return {}


def copy_manifest(claim: str) -> dict[str, Any]:
    volume = {"name": "d", "persistentVolumeClaim": {"claimName": claim}}
    return {"metadata": {"namespace": "ns"}, "spec": {"template": {"spec": {"volumes": [volume]}}}}


def test_a_claim_found_is_not_asked_for_again_soon_but_a_missing_one_is() -> None:
    claim = namespaced("v1", "ns", "persistentvolumeclaims", "exports")
    fake = CountingKubeJson({claim: {}})
    kube = Kube(fake)  # type: ignore[arg-type]
    assert kube.preflight_copy_job(copy_manifest("exports")) is None
    assert kube.preflight_copy_job(copy_manifest("exports")) is None
    assert fake.gets == [claim]
    for _ in range(2):
        missing = kube.preflight_copy_job(copy_manifest("other"))
        assert missing is not None and missing.reason == "ClaimNotFound"
    assert len(fake.gets) == 3  # not found: asked each time


def test_a_job_from_a_watch_event_is_not_read_again() -> None:
    pods = namespaced("v1", "ns", "pods")
    fake = CountingKubeJson({pods: {"items": []}})
    kube = Kube(fake)  # type: ignore[arg-type]
    complete = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    observed = kube.observe_copy_job("ns", "copy-x", job(complete))
    assert getattr(observed, "finished", None) == "Complete"
    assert fake.gets == [pods]
    assert kube.observe_copy_job("ns", "copy-x").__class__.__name__ == "CopyJobMissing"


@pytest.mark.parametrize(
    ("status", "look", "listed", "waiting"),
    [
        ({"active": 1, "ready": 1}, True, False, ""),  # running: nothing to ask its pods
        ({"active": 1}, False, False, None),  # not ready, not due: unknown, not listed
        ({"active": 1}, True, True, ""),  # not ready and due: its pods say why, if they do
        ({"conditions": [{"type": "Complete", "status": "True"}]}, False, True, ""),  # summary
    ],
)
def test_pods_are_listed_only_when_they_can_say_more(
    status: dict[str, Any], look: bool, listed: bool, waiting: str | None
) -> None:
    pods = namespaced("v1", "ns", "pods")
    fake = CountingKubeJson({pods: {"items": []}})
    observed = Kube(fake).observe_copy_job("ns", "copy-x", job(status), look)  # type: ignore[arg-type]
    assert fake.gets == ([pods] if listed else [])
    assert getattr(observed, "waiting", None) == waiting


def test_a_finished_job_whose_pods_are_gone_says_so() -> None:
    """The TTL controller deletes in the foreground: the pods, and the copier's summary in
    their termination messages, go before the Job, which its finalizer keeps."""
    pods = namespaced("v1", "ns", "pods")
    complete = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    deleted = job(complete)
    deleted["metadata"].update(
        deletionTimestamp="2026-11-28T10:00:00Z",
        finalizers=["foregroundDeletion", api.COPY_JOB_FINALIZER],
    )
    observed = Kube(CountingKubeJson({pods: {"items": []}})).observe_copy_job(
        "ns", "copy-x", deleted
    )  # type: ignore[arg-type]
    assert isinstance(observed, CopyJob)
    assert (observed.finished, observed.pods_gone, observed.deleting, observed.finalizer) == (
        "Complete",
        True,
        True,
        True,
    )
    there = {pods: {"items": [pod(CONTAINER, {"exitCode": 0, "message": '{"files": 1}'})]}}
    kept = Kube(CountingKubeJson(there)).observe_copy_job("ns", "copy-x", job(complete))  # type: ignore[arg-type]
    assert isinstance(kept, CopyJob)
    assert (kept.pods_gone, kept.deleting, kept.finalizer, kept.summary) == (
        False,
        False,
        False,
        {"files": 1},
    )


class PatchedJob(FakeKubeJson):
    """One Job whose finalizers change as JSON patches (and others) say."""

    PATH = namespaced("batch/v1", "ns", "jobs", "copy-x")

    def __init__(self, finalizers: list[str] | None) -> None:
        super().__init__({} if finalizers is None else {self.PATH: {"metadata": {}}})
        self.finalizers = finalizers
        self.patches: list[list[dict[str, Any]]] = []

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        super().get(path)
        return {"metadata": {"finalizers": list(self.finalizers or [])}}

    def json_patch(self, path: str, operations: list[dict[str, Any]]) -> Any:
        self.patches.append(operations)
        if self.finalizers is None:
            raise client.ApiException(status=404, reason="Not Found")
        test, remove = operations
        index = int(test["path"].rsplit("/", 1)[1])
        if self.finalizers[index : index + 1] != [test["value"]]:
            raise client.ApiException(status=422, reason="Unprocessable Entity")
        assert remove == {"op": "remove", "path": test["path"]}
        del self.finalizers[index]
        return {}


def test_the_copy_jobs_finalizer_is_removed_and_only_it() -> None:
    fake = PatchedJob(["foregroundDeletion", api.COPY_JOB_FINALIZER])
    # As last seen: before the garbage collector added foregroundDeletion in front of it.
    Kube(fake).release_copy_job("ns", "copy-x", [api.COPY_JOB_FINALIZER])  # type: ignore[arg-type]
    assert fake.finalizers == ["foregroundDeletion"]
    assert len(fake.patches) == 2  # the first one's test failed (422): read again, at index 1
    Kube(fake).release_copy_job("ns", "copy-x")  # type: ignore[arg-type]
    assert len(fake.patches) == 2  # not there any more: nothing to patch
    Kube(PatchedJob(None)).release_copy_job("ns", "copy-x", [api.COPY_JOB_FINALIZER])  # type: ignore[arg-type]
