"""The sandbox is a real cluster: garbage collection, Pod Security, RBAC, kubectl and helm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pinpoint_export_sandbox import binaries, process
from pinpoint_export_sandbox.stack import SandboxEnv
from pinpoint_export_sandbox.testing import Kubectl

pytestmark = pytest.mark.e2e
HELLO_CHART = Path(__file__).parent / "charts" / "hello"


def busybox_pod(name: str, command: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", command], **container}
            ],
        },
    }


def test_deleting_an_owner_cascades_to_its_job_and_pods(
    api: client.ApiClient, namespace: str
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "owned",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner.metadata.uid,
                }
            ],
        },
        "spec": {"template": {"spec": busybox_pod("x", "sleep 300")["spec"]}},
    }
    batch.create_namespaced_job(namespace, job)
    process.wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=owned").items,
        60,
        "the Job's pod",
    )

    core.delete_namespaced_config_map("owner", namespace)

    process.wait_for(
        lambda: (
            not batch.list_namespaced_job(namespace).items
            and not core.list_namespaced_pod(namespace).items
        ),
        90,
        "the garbage collector deleting the Job and its pod",
    )


def test_pod_security_restricted_is_enforced(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.patch_namespace(namespace, {"metadata": {"labels": labels}})
    privileged = busybox_pod("privileged", "true", securityContext={"privileged": True})
    with pytest.raises(client.ApiException) as rejected:
        core.create_namespaced_pod(namespace, privileged)
    assert rejected.value.status == 403
    assert "violates PodSecurity" in rejected.value.body

    restricted = busybox_pod(
        "restricted",
        "echo ok",
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    )
    core.create_namespaced_pod(namespace, restricted)
    process.wait_for(
        lambda: core.read_namespaced_pod("restricted", namespace).status.phase == "Succeeded",
        60,
        "the restricted pod to run",
    )


def test_rbac_denies_a_service_account_without_access(
    api: client.ApiClient, namespace: str, sandbox: SandboxEnv
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
    ).status.token
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    # Authenticated (a 403, not a 401), and refused by RBAC.
    with client.ApiClient(configuration) as as_nobody, pytest.raises(client.ApiException) as denied:
        client.CoreV1Api(as_nobody).list_namespaced_secret(namespace)
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
def test_helm_installs_a_chart(
    helm: str, namespace: str, sandbox: SandboxEnv, kubectl: Kubectl, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }
    run = [str(binaries.find(helm)), "--namespace", namespace]
    version = subprocess.run([*run, "version"], env=env, capture_output=True, text=True, check=True)
    assert ("v3." if helm == "helm3" else "v4.") in version.stdout
    subprocess.run(
        [*run, "install", "hello", str(HELLO_CHART), "--set", f"greeting={helm}", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    greeting = kubectl(
        "get", "configmap", "hello-hello", "-n", namespace, "-o", "jsonpath={.data.greeting}"
    )
    assert greeting.stdout == helm
