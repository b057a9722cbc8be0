"""The node agent's containers: image config -> argv and user, pod spec -> `podman create`.

Pure: no podman runs here (the sandbox's e2e tests run containers).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pinpoint_export_sandbox.nodeagent import containers, runtime
from pinpoint_export_sandbox.nodeagent.containers import Podman, create_argv
from pinpoint_export_sandbox.nodeagent.errors import ConfigError
from pinpoint_export_sandbox.nodeagent.fetch import manages_ownership
from pinpoint_export_sandbox.nodeagent.identity import identity
from pinpoint_export_sandbox.nodeagent.images import ImageConfig, image_argv
from pinpoint_export_sandbox.nodeagent.node import Host
from pinpoint_export_sandbox.nodeagent.plan import ContainerPlan, plan_container
from pinpoint_export_sandbox.nodeagent.podspec import Sources
from pinpoint_export_sandbox.nodeagent.volumes import Mount, plan_volumes
from pinpoint_export_sandbox.provisioner import PROVISIONED_BY, PROVISIONER

HOST = Host("node-1", "127.0.0.1", 6443, "/venv/bin/python", ("/venv",))
POD_DIR = "/work/pods/ns_p_uid"
OPERATOR = ImageConfig(
    name="ghcr.io/pinpoint-export-operator/pinpoint-export-operator:0.1.0",
    entrypoint=("pinpoint-export-operator",),
    cmd=("run",),
    user="65532:65532",
    working_dir="/home/nonroot",
)
LABELS = {"io.kubernetes.pod.uid": "uid-1"}
NO_SOURCES = Sources()


def make_pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
        "spec": {"containers": list(containers), **spec},
    }


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "image": OPERATOR.name, **fields}


def plan_of(
    spec: dict[str, Any], image: ImageConfig = OPERATOR, sources: Sources = NO_SOURCES, **pod: Any
) -> ContainerPlan:
    made = make_pod(spec, **pod)
    volumes = plan_volumes(made, sources, HOST, POD_DIR)
    return plan_container(made, spec, volumes, sources, HOST, POD_DIR, image)


def options(argv: list[str]) -> dict[str, list[str]]:
    """`--flag value` pairs of a create command line (flags without a value map to [''])."""
    found: dict[str, list[str]] = {}
    i = 1
    while i < len(argv) - 1:
        flag = argv[i]
        value = argv[i + 1] if not argv[i + 1].startswith("--") else ""
        if "=" in flag:
            flag, value = flag.split("=", 1)
        else:
            i += 1 if value else 0
        found.setdefault(flag, []).append(value)
        i += 1
    return found


# --- the image's configuration --------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "argv"),
    [
        ([], [], ("pinpoint-export-operator", "run")),  # ENTRYPOINT + CMD
        ([], ["copy", "--x"], ("pinpoint-export-operator", "copy", "--x")),  # args replace CMD
        (["python3", "-c", "1"], [], ("python3", "-c", "1")),  # command drops CMD too
        (["sh", "-c"], ["echo"], ("sh", "-c", "echo")),
    ],
)
def test_command_and_args_over_entrypoint_and_cmd(
    command: list[str], args: list[str], argv: tuple[str, ...]
) -> None:
    assert image_argv(OPERATOR, command, args) == argv


def test_an_image_with_nothing_to_run() -> None:
    with pytest.raises(ValueError, match="no command specified"):
        image_argv(ImageConfig("scratch"), [], [])
    assert image_argv(ImageConfig("scratch", cmd=("sh",)), [], []) == ("sh",)


@pytest.mark.parametrize(
    ("user", "numeric"),
    [
        ("", (0, None)),
        ("65532", (65532, None)),
        ("65532:65532", (65532, 65532)),
        ("nonroot", None),
        ("1:staff", None),
    ],
)
def test_image_user(user: str, numeric: tuple[int, int | None] | None) -> None:
    assert ImageConfig("i", user=user).numeric_user() == numeric


def test_identity_from_the_image_user() -> None:
    spec = container()
    assert identity(make_pod(spec), spec, OPERATOR) == (65532, 65532, ())
    root = ImageConfig("i")
    assert identity(make_pod(spec), spec, root) == (0, None, ())
    restricted = container(securityContext={"runAsNonRoot": True})
    with pytest.raises(ConfigError, match="image will run as root"):
        identity(make_pod(restricted), restricted, root)
    named = ImageConfig("i", user="nonroot")
    with pytest.raises(ConfigError, match=r"non-numeric user \(nonroot\)"):
        identity(make_pod(restricted), restricted, named)
    with pytest.raises(ConfigError, match="set runAsUser"):
        identity(make_pod(spec), spec, named)
    as_user = container(securityContext={"runAsUser": 1000})
    assert identity(make_pod(as_user), as_user, named) == (1000, None, ())


# --- the plan for a container ---------------------------------------------------------------

# The copy Job's pod, as exports/copy_job.py builds it.
COPIER = container(
    name="copier",
    args=["copy", "--source=s3://b/p/", "--dest=/data/run"],
    env=[{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA"}],
    resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    securityContext={
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    terminationMessagePolicy="FallbackToLogsOnError",
    volumeMounts=[{"name": "destination", "mountPath": "/data"}],
)
COPIER_POD = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "volumes": [{"name": "destination", "persistentVolumeClaim": {"claimName": "exports"}}],
}


def test_a_container_plan_takes_the_image_not_the_sandbox() -> None:
    plan = plan_of(COPIER, sources=Sources(claims={"exports": "/pv/1"}), **COPIER_POD)
    assert plan.image_config == OPERATOR
    assert plan.argv == (
        "pinpoint-export-operator",
        "copy",
        "--source=s3://b/p/",
        "--dest=/data/run",
    )
    assert (plan.uid, plan.gid, plan.groups) == (65532, 65532, (65532,))
    assert plan.working_dir == "/home/nonroot"
    # Neither PATH, HOME nor HOSTNAME: the image's and the runtime's.
    assert not {"PATH", "HOME", "HOSTNAME"} & set(plan.env)
    assert plan.env["AWS_ACCESS_KEY_ID"] == "AKIA"
    # Neither the host's virtual environment: the image has its own.
    assert plan.mounts == (
        Mount("/pv/1", "/data"),
        Mount(f"{POD_DIR}/containers/copier/termination-log", "/dev/termination-log"),
    )
    assert plan.read_only_root and plan.no_new_privileges and plan.fallback_to_logs
    assert (plan.capabilities_drop, plan.seccomp) == (("ALL",), "RuntimeDefault")
    assert (plan.cpu_shares, plan.cpu_limit, plan.memory_limit) == (102, None, 256 * 2**20)


def test_seccomp_and_limits() -> None:
    spec = container(resources={"limits": {"cpu": "1500m", "memory": "1Gi"}})
    plan = plan_of(spec)
    assert (plan.seccomp, plan.cpu_shares, plan.cpu_limit) == ("Unconfined", 2, 1.5)
    local = container(securityContext={"seccompProfile": {"type": "Localhost"}})
    with pytest.raises(ConfigError, match="Localhost"):
        plan_of(local, securityContext={"seccompProfile": {"type": "RuntimeDefault"}})


def test_nothing_to_run_is_a_start_error() -> None:
    plan = plan_of(container(), image=ImageConfig(OPERATOR.name, user="1"))
    assert plan.start_error is not None and "no command specified" in plan.start_error
    with pytest.raises(ValueError, match="no command specified"):
        create_argv(plan, "n", LABELS, "/cid")


# --- podman create --------------------------------------------------------------------------


def test_the_copy_pod_as_podman_create() -> None:
    plan = plan_of(COPIER, sources=Sources(claims={"exports": "/pv/1"}), **COPIER_POD)
    argv, env = create_argv(plan, "k8s_copier_p", LABELS, "/cid")
    assert argv[0] == "create" and argv[-1] == OPERATOR.name
    found = options(argv[:-1])
    assert (found["--name"], found["--cidfile"]) == (["k8s_copier_p"], ["/cid"])
    assert (found["--runtime"], found["--pull"], found["--network"]) == (
        ["runc"],
        ["never"],
        ["host"],
    )
    assert found["--log-driver"] == ["passthrough"]  # the output goes to the agent's log file
    assert found["--entrypoint"] == [
        '["pinpoint-export-operator", "copy", "--source=s3://b/p/", "--dest=/data/run"]'
    ]
    assert (found["--user"], found["--group-add"]) == (["65532:65532"], ["65532"])
    assert (found["--read-only"], found["--read-only-tmpfs"]) == ([""], ["false"])
    assert found["--cap-drop"] == ["all"]
    assert found["--security-opt"] == ["no-new-privileges"]  # and the default seccomp profile
    assert found["--hostname"] == ["p"]
    assert found["--workdir"] == ["/home/nonroot"]
    assert found["--cpu-shares"] == ["102"]
    assert found["--memory"] == found["--memory-swap"] == [str(256 * 2**20)]
    assert found["--mount"] == [
        "type=bind,source=/pv/1,destination=/data",
        f"type=bind,source={POD_DIR}/containers/copier/termination-log,"
        "destination=/dev/termination-log",
    ]
    assert found["--label"] == ["io.kubernetes.pod.uid=uid-1"]
    assert "--privileged" not in found and "--cpus" not in found
    # Values reach podman in its environment, never on its command line.
    assert "AKIA" not in " ".join(argv)
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA"
    assert "AWS_ACCESS_KEY_ID" in found["--env"]


def test_an_unrestricted_container() -> None:
    spec = container(
        command=["sh"],
        env=[{"name": "PATH", "value": "/x"}, {"name": "my.var", "value": "1"}],
        securityContext={
            "privileged": True,
            "capabilities": {"add": ["NET_ADMIN", "CAP_SYS_TIME"]},
        },
        resources={"limits": {"cpu": "2"}},
        volumeMounts=[{"name": "s", "mountPath": "/s", "readOnly": True}],
    )
    plan = plan_of(spec, image=ImageConfig("img", user=""), volumes=[{"name": "s", "emptyDir": {}}])
    argv, env = create_argv(plan, "n", {}, "/cid")
    found = options(argv[:-1])
    assert found["--user"] == ["0"]  # the primary group of root in the image
    assert found["--privileged"] == [""]
    assert found["--cap-add"] == ["NET_ADMIN", "SYS_TIME"]
    assert found["--security-opt"] == ["seccomp=unconfined"]  # no profile asked for
    assert found["--cpus"] == ["2"]
    assert "--read-only" not in found and "--memory" not in found
    assert f"type=bind,source={POD_DIR}/volumes/s,destination=/s,ro=true" in found["--mount"]
    # Names podman reads itself, or could take for a pattern, are passed with their values.
    assert {"PATH=/x", "my.var=1"} <= set(found["--env"])
    assert "PATH" not in env and "my.var" not in env


def test_a_mount_podman_cannot_express_is_refused() -> None:
    spec = container(volumeMounts=[{"name": "h", "mountPath": "/h"}])
    plan = plan_of(spec, volumes=[{"name": "h", "hostPath": {"path": "/a,b"}}])
    with pytest.raises(ValueError, match="commas"):
        create_argv(plan, "n", {}, "/cid")


def test_podman_messages() -> None:
    output = 'runc create failed: x\nError: runc: exec: "/nope": no such file or directory\n'
    assert containers._podman_error(output) == 'runc: exec: "/nope": no such file or directory'
    assert containers._podman_error("just this\n") == "just this"


def test_podman_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers.shutil, "which", lambda name: f"/usr/bin/{name}")
    files = {}
    for variable, name in containers.CONFIG_FILES.items():
        (tmp_path / name).write_text("")
        files[variable] = str(tmp_path / name)
    podman = Podman.find(files)
    assert podman is not None and podman.config == files
    assert podman.env({"X": "1"})["CONTAINERS_CONF"] == files["CONTAINERS_CONF"]
    monkeypatch.setattr(containers, "CONFIG_DIR", tmp_path / "none")
    assert Podman.find({}) is None  # nothing configured: pods run as processes
    monkeypatch.setattr(containers.shutil, "which", lambda name: None)
    assert Podman.find(files) is None


# --- fsGroup on claims ----------------------------------------------------------------------


def test_which_persistent_volumes_apply_fs_group() -> None:
    provisioned = {"metadata": {"annotations": {PROVISIONED_BY: PROVISIONER}}}
    assert manages_ownership({**provisioned, "spec": {"hostPath": {"path": "/v"}}})
    assert manages_ownership({"spec": {"local": {"path": "/v"}}})
    assert not manages_ownership({"spec": {"hostPath": {"path": "/v"}}})  # as NFS


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a directory's group needs root")
def test_fs_group_leaves_a_claim_that_ignores_it_as_it_is(tmp_path: Path) -> None:
    managed, fixed = tmp_path / "managed", tmp_path / "fixed"
    for directory in (managed, fixed):
        directory.mkdir(mode=0o755)
        os.chown(directory, 0, 0)
    pod = make_pod(
        container(),
        volumes=[
            {"name": "a", "persistentVolumeClaim": {"claimName": "a"}},
            {"name": "b", "persistentVolumeClaim": {"claimName": "b"}},
        ],
    )
    sources = Sources(claims={"a": str(managed), "b": str(fixed)}, fs_group_ignored=frozenset("b"))
    volumes = plan_volumes(pod, sources, HOST, str(tmp_path / "pod"))
    runtime.materialize(volumes.values(), 65532, None)
    assert (managed.stat().st_gid, stat.S_IMODE(managed.stat().st_mode)) == (65532, 0o2775)
    assert (fixed.stat().st_gid, stat.S_IMODE(fixed.stat().st_mode)) == (0, 0o755)


def test_image_inspections_are_kept_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of pods asks podman once per image, whether it is there or not."""
    podman = Podman("/usr/bin/podman", {})
    asked: list[str] = []

    def run(*args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        asked.append(args[-1])
        if args[-1] == OPERATOR.name:
            return subprocess.CompletedProcess(args, 0, '{"User": "65532:65532"}', "")
        return subprocess.CompletedProcess(args, 125, "", "Error: no such image")

    monkeypatch.setattr(Podman, "run", lambda self, *args, **kw: run(*args, **kw))
    clock = [100.0]
    for _ in range(3):
        found = podman.images([OPERATOR.name, "busybox:1.36", ""], now=lambda: clock[0])
        assert list(found) == [OPERATOR.name] and found[OPERATOR.name].user == "65532:65532"
    assert sorted(asked) == sorted([OPERATOR.name, "busybox:1.36"])
    clock[0] += containers.IMAGE_TTL + 1  # then asked again: it may have been built since
    podman.images(["busybox:1.36"], now=lambda: clock[0])
    assert asked.count("busybox:1.36") == 2
