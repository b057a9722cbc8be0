"""The sandbox as pytest fixtures: the sandbox (started once per session), namespaces, claims,
and the locally built operator image with the podman that runs it.

A pytest plugin (entry point `pytest11`), so the operator's tests and the sandbox's own get the
same fixtures, as pytest-kind hands out its cluster. The sandbox's state goes under the rootdir
of the test run (`.sandbox/`), or the running sandbox named by `$PPE_SANDBOX_ENV` is reused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from pinpoint_export_sandbox import binaries, process, storage
from pinpoint_export_sandbox.nodeagent.containers import Podman
from pinpoint_export_sandbox.s3server import S3Credentials
from pinpoint_export_sandbox.stack import Sandbox, SandboxEnv


@pytest.fixture(scope="session")
def sandbox(pytestconfig: pytest.Config) -> Iterator[SandboxEnv]:
    """A running sandbox: the one `make sandbox` started, else a new one for this session."""
    root = pytestconfig.rootpath
    env_file = Path(os.environ.get("PPE_SANDBOX_ENV", root / ".sandbox" / "env"))
    if env_file.exists():
        env = SandboxEnv.read(env_file)
        if env.is_alive():
            yield env
            return
    # Under the repository, not /tmp/pytest-of-root (mode 0700): pods running as non-root must
    # reach their volumes' host directories. Kept after the run for its logs.
    state_dir = root / ".sandbox" / "pytest"
    shutil.rmtree(state_dir, ignore_errors=True)
    with Sandbox(state_dir) as env:
        yield env


@pytest.fixture(scope="session")
def s3(sandbox: SandboxEnv) -> S3Credentials:
    """The sandbox's S3 server (versitygw)."""
    return sandbox.s3


@pytest.fixture(scope="session")
def api(sandbox: SandboxEnv) -> Iterator[client.ApiClient]:
    """A Kubernetes client with the sandbox's admin credentials."""
    with storage.api_client(sandbox.kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, ready for pods (its default ServiceAccount exists)."""
    core = client.CoreV1Api(api)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    process.wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        30,
        f"default ServiceAccount in {name}",
        interval=0.1,
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture
def bound_claim(api: client.ApiClient, namespace: str) -> Callable[..., Path]:
    """Make a PVC in the test's namespace, bound to a host directory; returns that directory."""

    def make(name: str = "data", size: str = "1Gi") -> Path:
        return storage.bound_claim(api, namespace, name, size)

    return make


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def kubectl(sandbox: SandboxEnv) -> Kubectl:
    """Run kubectl (from the sandbox's binaries) against the sandbox."""
    path = binaries.find("kubectl")

    def run(
        *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(path), *args],
            env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)},
            capture_output=True,
            text=True,
            check=check,
            input=input,
            timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def podman() -> Podman:
    """Podman as the node agent runs it (the project's configuration, tools/containers.sh)."""
    found = Podman.find()
    if found is None:
        pytest.fail("podman or its configuration is missing: run `tools/containers.sh`")
    return found


@pytest.fixture(scope="session")
def local_image(pytestconfig: pytest.Config, podman: Podman) -> str:
    """The operator's image, built by `make image` (the chart's default name), which the node
    agent runs as containers."""
    name = subprocess.run(
        [str(pytestconfig.rootpath / "tools" / "image.sh"), "name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if podman.run("image", "exists", name).returncode != 0:
        pytest.fail(f"image {name} is not built: run `make image`")
    return name


def pod_containers(podman: Podman, pod_uid: str) -> list[dict[str, object]]:
    """`podman inspect` of a pod's containers on the sandbox's node (those that exist now)."""
    listed = podman.run(
        "ps", "--all", "--quiet", "--filter", f"label=io.kubernetes.pod.uid={pod_uid}"
    )
    ids = listed.stdout.split()
    if not ids:
        return []
    inspected: list[dict[str, object]] = json.loads(podman.run("inspect", *ids, check=True).stdout)
    return inspected
