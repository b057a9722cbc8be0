"""The node agent under the real control plane: Jobs decided by the real Job controller from the
status it writes, volumes, in-cluster configuration, deadlines, deletion and start errors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pinpoint_export_sandbox import storage
from pinpoint_export_sandbox.process import wait_for
from pinpoint_export_sandbox.stack import SandboxEnv

pytestmark = pytest.mark.e2e

Json = dict[str, Any]


def sh(script: str, **fields: Any) -> Json:
    return {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", script], **fields}


def pod_manifest(name: str, *containers: Json, **spec: Any) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": list(containers), **spec},
    }


def job_manifest(name: str, *containers: Json, backoff_limit: int = 0, **spec: Any) -> Json:
    template_spec = {"restartPolicy": "Never", "containers": list(containers), **spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": template_spec}},
    }


def create_pod(core: client.CoreV1Api, namespace: str, manifest: Json) -> None:
    body = client.V1Pod.from_dict(manifest)
    assert body is not None
    core.create_namespaced_pod(namespace, body)


def create_job(batch: client.BatchV1Api, namespace: str, manifest: Json) -> None:
    body = client.V1Job.from_dict(manifest)
    assert body is not None
    batch.create_namespaced_job(namespace, body)


def read_pod(core: client.CoreV1Api, namespace: str, name: str) -> Json:
    pod: Json = core.api_client.sanitize_for_serialization(
        core.read_namespaced_pod(name, namespace)
    )
    return pod


def wait_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    done: Callable[[Json], bool],
    timeout: float = 60,
) -> Json:
    pod: Json = wait_for(
        lambda: p if done(p := read_pod(core, namespace, name)) else None, timeout, f"pod {name}"
    )
    return pod


def finished(pod: Json) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def job_condition(batch: client.BatchV1Api, namespace: str, name: str, timeout: float = 90) -> Json:
    """The Job's terminal condition (Complete or Failed), once the Job controller sets it."""

    def terminal() -> Json | None:
        job = batch.read_namespaced_job_status(name, namespace)
        for condition in (job.status and job.status.conditions) or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return {"type": condition.type, "reason": condition.reason}
        return None

    condition: Json = wait_for(terminal, timeout, f"job {name} finished")
    return condition


def job_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[Json]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}")
    return [core.api_client.sanitize_for_serialization(p) for p in pods.items]


def container_state(pod: Json) -> Json:
    (status,) = pod["status"]["containerStatuses"]
    state: Json = status["state"]
    return state


def processes_running(marker: str) -> list[int]:
    """Host processes whose command line contains `marker` (pods run on this host)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


def test_the_node_is_registered_and_ready(core: client.CoreV1Api, sandbox: SandboxEnv) -> None:
    node: Json = core.api_client.sanitize_for_serialization(core.read_node(sandbox.node_name))
    labels = node["metadata"]["labels"]
    assert (labels["kubernetes.io/hostname"], labels["kubernetes.io/os"]) == (
        sandbox.node_name,
        "linux",
    )
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    taints = node["spec"].get("taints") or []
    assert not [t for t in taints if t["key"] == "node.kubernetes.io/not-ready"]


def test_a_job_writes_into_its_claim(
    api: client.ApiClient,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    namespace: str,
    sandbox: SandboxEnv,
) -> None:
    directory = storage.bound_claim(api, namespace, "data")
    job = job_manifest(
        "writer",
        sh(
            "echo hi > /data/out.txt && echo wrote",
            volumeMounts=[{"name": "data", "mountPath": "/data"}],
        ),
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    create_job(batch, namespace, job)
    assert job_condition(batch, namespace, "writer")["type"] == "Complete"
    assert (directory / "out.txt").read_text() == "hi\n"
    (pod,) = job_pods(core, namespace, "writer")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["podIP"] == "127.0.0.1"
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    metadata = pod["metadata"]
    log = (
        sandbox.state_dir
        / "node"
        / "pods"
        / f"{namespace}_{metadata['name']}_{metadata['uid']}"
        / "main.log"
    )
    assert log.read_text() == "wrote\n"
    assert not os.path.lexists("/data/out.txt")  # mounted in the pod's namespace only


def test_a_failing_job_fails_after_its_backoff_limit(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    job = job_manifest("failing", sh("echo boom > /dev/termination-log; exit 3"), backoff_limit=1)
    create_job(batch, namespace, job)
    condition = job_condition(batch, namespace, "failing")
    assert condition == {"type": "Failed", "reason": "BackoffLimitExceeded"}
    pods = job_pods(core, namespace, "failing")
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        terminated = container_state(pod)["terminated"]
        assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
            3,
            "Error",
            "boom\n",
        )


def test_on_failure_restarts_in_place(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    script = "test -e /scratch/again && exit 0; touch /scratch/again; exit 1"
    job = job_manifest(
        "retrying",
        sh(script, volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}]),
        backoff_limit=3,
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    create_job(batch, namespace, job)
    assert job_condition(batch, namespace, "retrying")["type"] == "Complete"
    (pod,) = job_pods(core, namespace, "retrying")
    (status,) = pod["status"]["containerStatuses"]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1


def test_a_job_deadline_stops_a_hanging_pod(
    core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str
) -> None:
    marker = f"{3000 + uuid.uuid4().int % 1000}"
    job = job_manifest("hanging", sh(f"exec sleep {marker}"), terminationGracePeriodSeconds=5)
    job["spec"]["activeDeadlineSeconds"] = 3
    create_job(batch, namespace, job)
    wait_for(lambda: processes_running(f"sleep\0{marker}"), 30, "the pod's process")
    assert job_condition(batch, namespace, "hanging") == {
        "type": "Failed",
        "reason": "DeadlineExceeded",
    }
    wait_for(
        lambda: not processes_running(f"sleep\0{marker}"), 30, "the pod's process to be killed"
    )
    wait_for(lambda: not job_pods(core, namespace, "hanging"), 30, "the pod deleted")


def test_pod_active_deadline(core: client.CoreV1Api, namespace: str) -> None:
    create_pod(core, namespace, pod_manifest("slow", sh("sleep 600"), activeDeadlineSeconds=2))
    pod = wait_pod(core, namespace, "slow", finished)
    assert (pod["status"]["phase"], pod["status"]["reason"]) == ("Failed", "DeadlineExceeded")
    assert container_state(pod)["terminated"]["exitCode"] == 128 + 15


def test_deleting_a_pod_stops_it(core: client.CoreV1Api, namespace: str) -> None:
    marker = f"{4000 + uuid.uuid4().int % 1000}"
    create_pod(core, namespace, pod_manifest("doomed", sh(f"exec sleep {marker}")))
    wait_pod(core, namespace, "doomed", lambda p: p.get("status", {}).get("phase") == "Running")
    core.delete_namespaced_pod("doomed", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("doomed", namespace)
        except client.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_for(gone, 30, "the pod gone")
    assert not processes_running(f"sleep\0{marker}")


def test_environment_and_volumes_from_the_api(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="creds"), string_data={"user": "alice"}),
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"MODE": "fast"}),
    )
    script = 'echo "$USER_NAME $MODE $POD $NS $(cat /creds/user)" > /dev/termination-log'
    container = sh(
        script,
        env=[
            {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        envFrom=[{"configMapRef": {"name": "settings"}}],
        volumeMounts=[{"name": "creds", "mountPath": "/creds"}],
    )
    pod = pod_manifest(
        "env", container, volumes=[{"name": "creds", "secret": {"secretName": "creds"}}]
    )
    create_pod(core, namespace, pod)
    done = wait_pod(core, namespace, "env", finished)
    assert done["status"]["phase"] == "Succeeded"
    assert container_state(done)["terminated"]["message"] == f"alice fast env {namespace} alice\n"


def test_in_cluster_config_works_in_a_pod(
    core: client.CoreV1Api, api: client.ApiClient, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
    role = client.V1Role.from_dict({"metadata": {"name": "pod-reader"}, "rules": [rule]})
    binding = client.V1RoleBinding.from_dict(
        {
            "metadata": {"name": "pod-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
        }
    )
    assert role is not None and binding is not None
    rbac.create_namespaced_role(namespace, role)
    rbac.create_namespaced_role_binding(namespace, binding)
    script = (
        "from kubernetes import client, config\n"
        "config.load_incluster_config()\n"
        "namespace = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n"
        "pods = client.CoreV1Api().list_namespaced_pod(namespace).items\n"
        "open('/dev/termination-log', 'w').write(' '.join(p.metadata.name for p in pods))\n"
    )
    container = {
        "name": "main",
        "image": "python:3.12-slim",
        "command": ["python", "-c", script],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
        },
    }
    create_pod(core, namespace, pod_manifest("incluster", container))
    pod = wait_pod(core, namespace, "incluster", finished)
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated.get("message")) == (0, "incluster")


def test_a_missing_executable_gives_a_reason(core: client.CoreV1Api, namespace: str) -> None:
    container = {"name": "main", "image": "busybox:1.36", "command": ["no-such-program"]}
    create_pod(core, namespace, pod_manifest("broken", container))
    pod = wait_pod(core, namespace, "broken", finished)
    assert pod["status"]["phase"] == "Failed"
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert terminated["message"] == 'exec: "no-such-program": executable file not found in $PATH'


def test_a_missing_secret_waits_then_runs(core: client.CoreV1Api, namespace: str) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    create_pod(
        core, namespace, pod_manifest("patient", sh("echo $TOKEN > /dev/termination-log", env=env))
    )

    def config_error(pod: Json) -> bool:
        waiting = (
            container_state(pod).get("waiting") if pod["status"].get("containerStatuses") else None
        )
        return bool(waiting and waiting["reason"] == "CreateContainerConfigError")

    pod = wait_pod(core, namespace, "patient", config_error)
    assert container_state(pod)["waiting"]["message"] == 'secret "later" not found'
    assert pod["status"]["phase"] == "Pending"
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="later"), string_data={"token": "t0"}
    )
    core.create_namespaced_secret(namespace, secret)
    pod = wait_pod(core, namespace, "patient", finished)
    assert container_state(pod)["terminated"]["message"] == "t0\n"


def test_a_non_root_pod_writes_into_its_claim_through_fs_group(
    api: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    directory = storage.bound_claim(api, namespace, "data")
    container = sh(
        "mkdir /data/out && id -u > /data/out/uid",
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "allowPrivilegeEscalation": False,
        },
    )
    manifest = pod_manifest(
        "writer",
        container,
        securityContext={"fsGroup": 2000},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    create_pod(core, namespace, manifest)
    assert wait_pod(core, namespace, "writer", finished)["status"]["phase"] == "Succeeded"
    assert (directory / "out" / "uid").read_text() == "1000\n"
    assert (directory / "out").stat().st_gid == 2000  # setgid directories, as the kubelet makes
