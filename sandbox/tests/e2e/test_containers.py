"""Pods of a locally built image run as OCI containers (podman, runc) under the real control
plane: the securityContext as podman applies it, termination message and exit code, stop with
the grace period, start errors, the OOM killer, fsGroup on claims that manage ownership only.

The image is the operator's (`make image`); its USER is 65532.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from pinpoint_export_sandbox import storage
from pinpoint_export_sandbox.nodeagent.containers import Podman
from pinpoint_export_sandbox.process import wait_for
from pinpoint_export_sandbox.stack import SandboxEnv
from pinpoint_export_sandbox.testing import pod_containers

pytestmark = pytest.mark.e2e

Json = dict[str, Any]

RESTRICTED_POD = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
# What the program reports of itself, from inside the container.
SELF_REPORT = """
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print("ids", os.getuid(), os.getgid(), sorted(os.getgroups()))
print("caps", status["CapEff"].strip(), status["CapBnd"].strip())
print("nnp", status["NoNewPrivs"].strip(), "seccomp", status["Seccomp"].strip())
try:
    open("/written", "w")
except OSError as error:
    print("root", error.strerror)
"""


def pod_manifest(name: str, container: Json, **spec: Any) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def create_pod(core: client.CoreV1Api, namespace: str, manifest: Json) -> None:
    core.create_namespaced_pod(namespace, client.V1Pod.from_dict(manifest))


def wait_pod(
    core: client.CoreV1Api, namespace: str, name: str, done: Callable[[Json], bool]
) -> Json:
    def read() -> Json | None:
        pod: Json = core.api_client.sanitize_for_serialization(
            core.read_namespaced_pod(name, namespace)
        )
        return pod if done(pod) else None

    found: Json = wait_for(read, 60, f"pod {name}", interval=0.2)
    return found


def finished(pod: Json) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def container_state(pod: Json) -> Json:
    (status,) = pod["status"]["containerStatuses"]
    state: Json = status["state"]
    return state


def python(image: str, script: str, **fields: Any) -> Json:
    return {"name": "main", "image": image, "command": ["python3", "-c", script], **fields}


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe in a directory for a hostPath volume: a container blocks on reading it
    until the test writes."""
    directory = tmp_path / "sync"
    directory.mkdir()
    path = directory / "go"
    os.mkfifo(path, 0o666)
    path.chmod(0o666)
    return path


def release(fifo: Path, line: str = "go") -> None:
    """Write to the pipe once its reader (the container) has opened it."""

    def opened() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no reader yet
                return None
            raise

    fd: int = wait_for(opened, 60, "the container reading the pipe", interval=0.1)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def running(pod: Json) -> bool:
    return pod.get("status", {}).get("phase") == "Running"


def log_of(sandbox: SandboxEnv, pod: Json, container: str = "main") -> str:
    metadata = pod["metadata"]
    directory = f"{metadata['namespace']}_{metadata['name']}_{metadata['uid']}"
    return (sandbox.state_dir / "node" / "pods" / directory / f"{container}.log").read_text()


def test_a_restricted_pod_runs_as_a_container_of_the_image(
    core: client.CoreV1Api,
    namespace: str,
    local_image: str,
    podman: Podman,
    fifo: Path,
    sandbox: SandboxEnv,
) -> None:
    script = SELF_REPORT + (
        "open('/sync/go').read()\n"
        "open('/dev/termination-log', 'w').write(f'done as {os.getuid()}')\n"
        "raise SystemExit(3)\n"
    )
    container = python(
        local_image,
        script,
        securityContext=RESTRICTED_CONTAINER,
        volumeMounts=[{"name": "sync", "mountPath": "/sync"}],
    )
    manifest = pod_manifest(
        "restricted",
        container,
        securityContext=RESTRICTED_POD,
        volumes=[{"name": "sync", "hostPath": {"path": str(fifo.parent), "type": "Directory"}}],
    )
    create_pod(core, namespace, manifest)
    pod = wait_pod(core, namespace, "restricted", running)

    # As podman runs it: the image's user, read-only, no capability, no new privileges.
    (inspected,) = pod_containers(podman, pod["metadata"]["uid"])
    config, host = inspected["Config"], inspected["HostConfig"]
    assert isinstance(config, dict) and isinstance(host, dict)
    assert config["User"] == "65532:65532"
    assert config["Image"] == local_image
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "host"
    assert not inspected["EffectiveCaps"] and not inspected["BoundingCaps"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert pod["status"]["containerStatuses"][0]["containerID"] == f"podman://{inspected['Id']}"

    release(fifo)
    pod = wait_pod(core, namespace, "restricted", finished)
    assert pod["status"]["phase"] == "Failed"
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (
        3,
        "Error",
        "done as 65532",
    )
    assert log_of(sandbox, pod).splitlines() == [
        "ids 65532 65532 [65532]",
        "caps 0000000000000000 0000000000000000",
        "nnp 1 seccomp 2",  # 2: a filter, the runtime's default profile
        "root Read-only file system",
    ]
    assert not pod_containers(podman, pod["metadata"]["uid"])  # removed once it exited


def test_deletion_stops_a_container_after_its_grace_period(
    core: client.CoreV1Api, namespace: str, local_image: str, podman: Podman, sandbox: SandboxEnv
) -> None:
    """SIGTERM first (the program ignores it), SIGKILL once the grace period is over."""
    script = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('TERM', flush=True))\n"
        "print('waiting', flush=True)\n"
        "while True: signal.pause()\n"
    )
    manifest = pod_manifest(
        "stubborn", python(local_image, script), terminationGracePeriodSeconds=2
    )
    create_pod(core, namespace, manifest)
    pod = wait_pod(core, namespace, "stubborn", running)
    uid = pod["metadata"]["uid"]
    wait_for(lambda: "waiting" in log_of(sandbox, pod), 30, "the program waiting")
    core.delete_namespaced_pod("stubborn", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("stubborn", namespace)
        except client.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_for(gone, 30, "the pod gone")
    assert log_of(sandbox, pod).splitlines() == ["waiting", "TERM"]
    assert not pod_containers(podman, uid)


def test_a_missing_program_is_a_start_error(
    core: client.CoreV1Api, namespace: str, local_image: str
) -> None:
    container = {"name": "main", "image": local_image, "command": ["/no/such/program"]}
    create_pod(core, namespace, pod_manifest("broken", container))
    pod = wait_pod(core, namespace, "broken", finished)
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert 'exec: "/no/such/program"' in terminated["message"], terminated["message"]


def test_the_oom_killer_ends_a_container_over_its_memory_limit(
    core: client.CoreV1Api, namespace: str, local_image: str
) -> None:
    script = "chunks = []\nwhile True: chunks.append(bytearray(4 << 20))\n"
    container = python(local_image, script, resources={"limits": {"memory": "48Mi"}})
    create_pod(core, namespace, pod_manifest("hungry", container))
    pod = wait_pod(core, namespace, "hungry", finished)
    terminated = container_state(pod)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")


@pytest.fixture
def root_owned_claim(api: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A claim bound to a static hostPath PV whose directory is root's, mode 0755, as many
    NFS exports and hostPath volumes are."""
    directory = tmp_path / "nfs-like"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    core = client.CoreV1Api(api)
    name = f"static-{uuid.uuid4().hex[:8]}"
    volume = {
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": str(directory), "type": "Directory"},
            "claimRef": {"namespace": namespace, "name": "static"},
        },
    }
    core.create_persistent_volume(volume)  # type: ignore[arg-type]
    claim = {
        "metadata": {"name": "static"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    core.create_namespaced_persistent_volume_claim(namespace, claim)  # type: ignore[arg-type]
    storage.claim_directory(api, namespace, "static")
    yield directory
    core.delete_persistent_volume(name)


def test_fs_group_applies_to_the_provisioner_claims_not_to_a_static_host_path(
    api: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    local_image: str,
    root_owned_claim: Path,
    sandbox: SandboxEnv,
) -> None:
    provisioned = storage.bound_claim(api, namespace, "provisioned")
    script = (
        "for directory in ('/provisioned', '/static'):\n"
        "    try:\n"
        "        open(f'{directory}/file', 'w').write('x')\n"
        "        print(directory, 'written')\n"
        "    except OSError as error:\n"
        "        print(directory, error.strerror)\n"
    )
    container = python(
        local_image,
        script,
        securityContext=RESTRICTED_CONTAINER,
        volumeMounts=[
            {"name": "provisioned", "mountPath": "/provisioned"},
            {"name": "static", "mountPath": "/static"},
        ],
    )
    manifest = pod_manifest(
        "writer",
        container,
        securityContext={**RESTRICTED_POD, "fsGroup": 65532},
        volumes=[
            {"name": n, "persistentVolumeClaim": {"claimName": n}}
            for n in ("provisioned", "static")
        ],
    )
    create_pod(core, namespace, manifest)
    pod = wait_pod(core, namespace, "writer", finished)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert log_of(sandbox, pod).splitlines() == [
        "/provisioned written",
        "/static Permission denied",
    ]
    info = os.stat(root_owned_claim)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0o755)
    assert not (root_owned_claim / "file").exists()
    assert (provisioned / "file").stat().st_uid == 65532
    assert provisioned.stat().st_gid == 65532
