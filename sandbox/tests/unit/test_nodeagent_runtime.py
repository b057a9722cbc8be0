"""The node agent's runtime on this host: mount namespaces, identities, exit codes, messages.

No control plane: plans are made from pod dicts and run through the launcher. Needs root.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pinpoint_export_sandbox.nodeagent import runtime
from pinpoint_export_sandbox.nodeagent.cgroups import PodsGroup, cpu_hierarchy
from pinpoint_export_sandbox.nodeagent.node import Host
from pinpoint_export_sandbox.nodeagent.plan import plan_container
from pinpoint_export_sandbox.nodeagent.podspec import Sources, TokenRef
from pinpoint_export_sandbox.nodeagent.volumes import plan_volumes
from pinpoint_export_sandbox.process import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")

HOST = Host("node-1", "127.0.0.1", 6443, sys.executable)
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SOURCES = Sources(
    config_maps={"kube-root-ca.crt": {"ca.crt": b"CA"}}, tokens={TokenRef(None, 3607): "jwt"}
)
API_ACCESS = {
    "name": "api",
    "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
        ]
    },
}


class Ran:
    def __init__(self, exit_code: int, message: str, log: str) -> None:
        self.exit_code, self.message, self.log = exit_code, message, log


def run(
    tmp_path: Path,
    container: dict[str, Any],
    sources: Sources = SOURCES,
    cgroup_procs: Path | None = None,
    **spec: Any,
) -> Ran:
    """Plan, set up and run a one-container pod to completion."""
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [{"name": "main", "image": "busybox", **container}], **spec},
    }
    pod_dir = str(tmp_path / "pod")
    volumes = plan_volumes(pod, sources, HOST, pod_dir)
    context = spec.get("securityContext") or {}
    runtime.materialize(volumes.values(), context.get("fsGroup"), None)
    plan = plan_container(pod, pod["spec"]["containers"][0], volumes, sources, HOST, pod_dir)
    process = runtime.start(plan, pod_dir, isolate=True, cgroup_procs=cgroup_procs)
    exit_code = process.wait()
    message = runtime.termination_message(plan, pod_dir, process, exit_code)
    return Ran(exit_code, message, (tmp_path / "pod" / "main.log").read_text())


def sh(script: str) -> dict[str, Any]:
    return {"command": ["sh", "-c", script]}


def test_volumes_at_paths_missing_on_the_host_leave_no_trace(tmp_path: Path) -> None:
    for path in ("/data", "/run/secrets/kubernetes.io", "/dev/termination-log"):
        if os.path.lexists(path):
            pytest.skip(f"{path} exists on this host")
    claim = tmp_path / "pv"
    claim.mkdir()
    ran = run(
        tmp_path,
        {
            **sh(
                f"echo hi > /data/out.txt; cat {TOKEN_MOUNT}/token {TOKEN_MOUNT}/ca.crt; hostname"
            ),
            "volumeMounts": [
                {"name": "data", "mountPath": "/data"},
                {"name": "api", "mountPath": TOKEN_MOUNT, "readOnly": True},
            ],
        },
        Sources(SOURCES.secrets, SOURCES.config_maps, {"c": str(claim)}, SOURCES.tokens),
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}, API_ACCESS],
    )
    assert (ran.exit_code, ran.log) == (0, "jwtCAp\n")
    assert (claim / "out.txt").read_text() == "hi\n"
    for path in ("/data", "/run/secrets/kubernetes.io", "/dev/termination-log"):
        assert not os.path.lexists(path)


def test_read_only_root_and_read_only_mounts(tmp_path: Path) -> None:
    script = (
        "touch /tmp/x 2>/dev/null && echo root-writable;"
        "touch /ro/x 2>/dev/null && echo ro-writable;"
        "touch /rw/x && echo rw-writable;"
        "echo ok > /dev/null && echo dev-writable"
    )
    ran = run(
        tmp_path,
        {
            **sh(script),
            "securityContext": {"readOnlyRootFilesystem": True},
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/rw"},
                {"name": "scratch", "mountPath": "/ro", "readOnly": True},
            ],
        },
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    assert ran.log.split() == ["rw-writable", "dev-writable"]


def test_termination_message_from_the_file_then_from_the_logs(tmp_path: Path) -> None:
    ran = run(tmp_path / "file", sh("echo done > /dev/termination-log; exit 3"))
    assert (ran.exit_code, ran.message) == (3, "done\n")
    custom = {**sh("echo fine > /tmp/msg"), "terminationMessagePath": "/tmp/msg"}
    assert run(tmp_path / "custom", custom).message == "fine\n"
    assert not Path("/tmp/msg").exists() or Path("/tmp/msg").read_text() != "fine\n"
    fallback = {**sh("seq 1 100; exit 1"), "terminationMessagePolicy": "FallbackToLogsOnError"}
    ran = run(tmp_path / "fallback", fallback)
    assert ran.message.splitlines() == [str(n) for n in range(21, 101)]


def test_the_operator_image_runs_as_nonroot_with_its_volumes(tmp_path: Path) -> None:
    script = (
        "import os, kubernetes, pinpoint_export_operator;"
        "print(os.getuid(), os.getgid(), sorted(os.getgroups()));"
        "open('/scratch/f', 'w').write('x');"
        "print(open('/var/run/secrets/kubernetes.io/serviceaccount/token').read())"
    )
    ran = run(
        tmp_path,
        {
            "image": "ghcr.io/acme/pinpoint-export-operator:0.1.0",
            "command": ["python", "-c", script],
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "api", "mountPath": TOKEN_MOUNT, "readOnly": True},
            ],
        },
        securityContext={"runAsNonRoot": True, "fsGroup": 2000},
        volumes=[{"name": "scratch", "emptyDir": {}}, API_ACCESS],
    )
    assert (ran.exit_code, ran.log) == (0, "65532 65532 [2000]\njwt\n")
    assert os.stat(tmp_path / "pod" / "volumes" / "scratch" / "f").st_gid == 2000


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"command": ["no-such-program"]},
            'exec: "no-such-program": executable file not found in $PATH',
        ),
        ({"command": ["/no/such/program"]}, 'exec: "/no/such/program": no such file or directory'),
        ({"image": "nginx"}, "set the container's command"),
    ],
)
def test_start_errors_say_why(tmp_path: Path, container: dict[str, Any], message: str) -> None:
    with pytest.raises(runtime.StartFailed, match=re.escape(message)):
        run(tmp_path, container)


def test_stopping_signals_the_whole_process_group(tmp_path: Path) -> None:
    container = {"name": "main", "image": "busybox", **sh("sleep 300 & sleep 300")}
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [container]},
    }
    pod_dir = str(tmp_path)
    plan = plan_container(pod, container, {}, SOURCES, HOST, pod_dir)
    process = runtime.start(plan, pod_dir, isolate=True)
    process.signal(signal.SIGTERM)
    assert process.wait() == 128 + signal.SIGTERM

    def group_gone() -> bool:  # the background sleep went too
        try:
            os.killpg(process.popen.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone, 10, "the container's process group to exit")


@pytest.fixture
def pods_group() -> Iterator[PodsGroup]:
    hierarchy = cpu_hierarchy(Path("/proc/self/mountinfo").read_text())
    if os.geteuid() != 0 or hierarchy is None:
        pytest.skip("needs root and a cgroup v1 cpu hierarchy")
    group = PodsGroup.create("unit-test", 2)
    assert group is not None
    yield group
    group.close()
    assert not group.path.exists()


def test_a_process_runs_in_its_containers_group_weighted_and_capped(
    tmp_path: Path, pods_group: PodsGroup
) -> None:
    assert (pods_group.path / "cpu.shares").read_text().strip() == "2048"
    procs = pods_group.container("u_main", shares=102, cpu_limit=0.25)
    group = procs.parent
    assert (group / "cpu.shares").read_text().strip() == "102"
    assert (group / "cpu.cfs_quota_us").read_text().strip() == "25000"
    relative = "/" + str(group.relative_to(cpu_hierarchy(Path("/proc/self/mountinfo").read_text())))
    # As a copy pod runs: a read-only root (which makes /sys read-only too), not root.
    restricted = {"securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 65532}}
    script = sh("grep -E ':cpu[,:]' /proc/self/cgroup")
    ran = run(tmp_path, {**script, **restricted}, cgroup_procs=procs)
    assert ran.exit_code == 0, ran.log
    assert ran.log.strip().endswith(relative), ran.log
    pods_group.release("u_main")
    assert not group.exists()
