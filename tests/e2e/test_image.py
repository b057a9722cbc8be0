"""The image `make image` builds, run for real: the node agent runs its pods as OCI containers
(podman, runc), so these tests show what a cluster would do with it.

The chart, installed with its default image in a namespace enforcing Pod Security `restricted`:
the operator runs as a container of the image (uid 65532, read-only root, no capabilities, as
`podman inspect` shows), answers /healthz, and an export in another `restricted` namespace
reaches Ready with its copy pod a container of the same image, whose copier has the fast inflate
and line count. (test_claim_access.py: the copier as a non-root container on a root-owned
claim.)
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_sandbox import binaries, process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.nodeagent.containers import Podman
from pinpoint_export_sandbox.stack import SandboxEnv
from pinpoint_export_sandbox.testing import pod_containers

from .conftest import Kubectl, export_manifest, wait_phase
from .test_helm import CHART, RESTRICTED, Helm, Release, create_namespace

pytestmark = pytest.mark.e2e

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@pytest.fixture
def chart(
    api: client.ApiClient,
    sandbox: SandboxEnv,
    kubectl: Kubectl,
    crds: None,
    session_operator_stopped: None,
    emulator: EmulatorAdmin,
    tmp_path: Path,
) -> Iterator[Release]:
    """A release to install in a namespace enforcing `restricted`, with Helm 4."""
    peerings = str(CHART / "crds" / "kopf-peerings.yaml")
    kubectl("apply", "--server-side", "-f", peerings)
    home = tmp_path / "helm"
    env = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig),
        **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")},
    }
    namespace = create_namespace(api, "ppe-system", RESTRICTED)
    emulator.reset(state=False)
    release = Release(
        Helm("helm4", binaries.find("helm4"), env), namespace, sandbox, tmp_path / "v"
    )
    yield release
    print(release.logs())  # noqa: T201  (shown when the test failed)
    release.uninstall()
    client.CoreV1Api(api).delete_namespace(namespace)


def copy_pods(api: client.ApiClient, namespace: str, export: str) -> list[Any]:
    selector = f"{JOB_NAME_LABEL}={export}-copy"
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def test_the_chart_runs_the_operator_and_the_copier_as_restricted_containers(
    chart: Release,
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    local_image: str,
    podman: Podman,
    emulator: EmulatorAdmin,
    bucket: str,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    chart.install()  # the chart's default image: the one `make image` built
    (pod,) = chart.pods(api)
    assert pod.spec.containers[0].image == local_image
    assert pod.status.container_statuses[0].container_id.startswith("podman://")
    (operator,) = pod_containers(podman, pod.metadata.uid)
    config, host = operator["Config"], operator["HostConfig"]
    assert isinstance(config, dict) and isinstance(host, dict)
    assert config["User"] == "65532:65532"
    assert host["ReadonlyRootfs"] is True
    assert not operator["EffectiveCaps"] and not operator["BoundingCaps"]
    assert "no-new-privileges" in host["SecurityOpt"]
    liveness = yaml.safe_load(chart.values_file.read_text())["livenessPort"]

    def healthy() -> bool:  # the pod is Ready as it starts: the sandbox runs no probes
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=5) as answer:
            return bool(answer.status == 200)

    process.wait_for(healthy, 60, "the operator's /healthz")

    # The export's namespace enforces `restricted` too: the copy pod is admitted as it is.
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    volume = bound_claim("exports")
    app = emulator.create_app()
    emulator.seed(app, 50)
    manifest = export_manifest("contained", app)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
    done = wait_phase(api, namespace, "contained", ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Succeeded", done["status"]
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "ppe/contained", "--timeout=10s")

    (copier,) = copy_pods(api, namespace, "contained")
    (status,) = copier.status.container_statuses
    assert status.image == local_image and status.container_id.startswith("podman://")
    assert (status.state.terminated.exit_code, status.state.terminated.reason) == (0, "Completed")
    run_dir = volume / done["status"]["output"]["path"]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files and {p.stat().st_uid for p in files} == {65532}  # written by the copier's user


def test_the_image_verifies_with_the_fast_inflate_and_line_count(
    local_image: str, podman: Podman
) -> None:
    """Both have a fallback that works without the wheel, only slower: the image must carry
    the wheels for the copier to run at the speed the README reports."""
    used = podman.run(
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python", local_image,
        "-c", "from pinpoint_export_operator.copier import verify; "
        "print(verify.INFLATE, verify.LINE_COUNT)",
    )  # fmt: skip
    assert used.returncode == 0, used.stderr
    assert used.stdout.split() == ["isal", "stringzilla"]
