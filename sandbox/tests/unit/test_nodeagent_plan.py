"""The node agent's pod spec -> launch plan: images, $(VAR), env sources, identity, volumes."""

from __future__ import annotations

from typing import Any

import pytest

from pinpoint_export_sandbox.nodeagent.env import container_env, expand
from pinpoint_export_sandbox.nodeagent.errors import ConfigError, VolumeError
from pinpoint_export_sandbox.nodeagent.identity import identity
from pinpoint_export_sandbox.nodeagent.images import entrypoint, image_repository, is_operator_image
from pinpoint_export_sandbox.nodeagent.node import Host
from pinpoint_export_sandbox.nodeagent.plan import cpu_nice, plan_container
from pinpoint_export_sandbox.nodeagent.podspec import Sources, TokenRef, references
from pinpoint_export_sandbox.nodeagent.volumes import Mount, plan_volumes

PYTHON = "/venv/bin/python"
HOST = Host("node-1", "127.0.0.1", 6443, PYTHON)
POD_DIR = "/work/pods/ns_p_uid"
OPERATOR = "ghcr.io/acme/pinpoint-export-operator:0.1.0"
KUBE_API_ACCESS = {
    "name": "kube-api-access-x1",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                    ]
                }
            },
        ],
    },
}


def make_pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "x"}},
        "spec": {"containers": list(containers), "nodeName": "node-1", **spec},
    }


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox:1.36", **fields}


# --- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository", "operator"),
    [
        ("busybox", "busybox", False),
        ("busybox:1.36", "busybox", False),
        (OPERATOR, "ghcr.io/acme/pinpoint-export-operator", True),
        (
            "localhost:5000/pinpoint-export-operator",
            "localhost:5000/pinpoint-export-operator",
            True,
        ),
        ("x/pinpoint-export-operator:1@sha256:ab", "x/pinpoint-export-operator", True),
        ("x/pinpoint-export-operator-tests:1", "x/pinpoint-export-operator-tests", False),
    ],
)
def test_image_repository(image: str, repository: str, operator: bool) -> None:
    assert image_repository(image) == repository
    assert is_operator_image(image) is operator


def test_operator_entrypoint_maps_to_the_installed_package() -> None:
    module = (PYTHON, "-m", "pinpoint_export_operator")
    assert entrypoint(OPERATOR, [], ["run", "--x"], PYTHON) == (*module, "run", "--x")
    script = ["/usr/local/bin/pinpoint-export-operator", "copy"]
    assert entrypoint(OPERATOR, script, ["--to", "/d"], PYTHON) == (*module, "copy", "--to", "/d")
    assert entrypoint(OPERATOR, ["sh", "-c", "x"], [], PYTHON) == ("sh", "-c", "x")


def test_other_images_run_their_command_or_args() -> None:
    assert entrypoint("busybox", ["sh", "-c"], ["echo hi"], PYTHON) == ("sh", "-c", "echo hi")
    assert entrypoint("busybox", [], ["sleep", "1"], PYTHON) == ("sleep", "1")
    with pytest.raises(ValueError, match="no entrypoint"):
        entrypoint("nginx", [], [], PYTHON)


# --- $(VAR) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expanded"),
    [
        ("$(A)", "a"),
        ("x-$(A)-$(B)-y", "x-a-b-y"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$a"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("$", "$"),
        ("a$$b", "a$b"),
        ("$()", "$()"),
        ("", ""),
    ],
)
def test_expand_like_kubernetes(value: str, expanded: str) -> None:
    assert expand(value, {"A": "a", "B": "b"}.get) == expanded


# --- environment ----------------------------------------------------------------------------


def test_env_order_expansion_and_service_variables() -> None:
    spec = container(
        envFrom=[{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        env=[
            {"name": "FIRST", "value": "1"},
            {"name": "SECOND", "value": "$(FIRST)-$(CM_K)-$(LATER)"},
            {"name": "LATER", "value": "late"},
            {
                "name": "URL",
                "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)",
            },
            {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
        ],
    )
    sources = Sources(config_maps={"cm": {"K": b"v", "bad=key": b"x"}})
    env = container_env(make_pod(spec), spec, sources, HOST)
    assert env["SECOND"] == "1-v-$(LATER)"  # only variables defined before are expanded
    assert env["URL"] == "https://127.0.0.1:6443"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"  # the container's own value wins
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert "CM_bad=key" not in env


def test_env_from_secrets_config_maps_and_the_downward_api() -> None:
    spec = container(
        resources={"limits": {"cpu": "1500m", "memory": "64Mi"}},
        env=[
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
            {
                "name": "OPTKEY",
                "valueFrom": {"secretKeyRef": {"name": "s", "key": "no", "optional": True}},
            },
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
    )
    pod = make_pod(spec, serviceAccountName="runner")
    sources = Sources(secrets={"s": {"k": b"secret\xff"}}, config_maps={"cm": {"k": b"conf"}})
    env = container_env(pod, spec, sources, HOST)
    assert env["S"].encode("utf-8", "surrogateescape") == b"secret\xff"
    assert (env["C"], env["NAME"], env["NS"], env["NODE"]) == ("conf", "p", "ns", "node-1")
    assert (env["SA"], env["IP"], env["APP"]) == ("runner", "127.0.0.1", "x")
    assert (env["CPU"], env["MEM"]) == ("2", "64")
    assert "OPT" not in env and "OPTKEY" not in env


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            'secret "s" not found',
        ),
        (
            [{"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nokey"}}}],
            "couldn't find key nokey in ConfigMap ns/cm",
        ),
        (
            [{"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}],
            "unsupported fieldRef",
        ),
    ],
)
def test_env_errors_are_config_errors(env: list[dict[str, Any]], message: str) -> None:
    spec = container(env=env)
    with pytest.raises(ConfigError, match=message):
        container_env(make_pod(spec), spec, Sources(config_maps={"cm": {}}), HOST)


def test_missing_required_env_from_is_a_config_error() -> None:
    spec = container(envFrom=[{"secretRef": {"name": "creds"}}])
    with pytest.raises(ConfigError, match='secret "creds" not found'):
        container_env(make_pod(spec), spec, Sources(), HOST)
    optional = container(envFrom=[{"secretRef": {"name": "creds", "optional": True}}])
    assert "KUBERNETES_SERVICE_HOST" in container_env(make_pod(optional), optional, Sources(), HOST)


# --- identity -------------------------------------------------------------------------------


def test_identity_defaults_to_the_image_user() -> None:
    busybox = container()
    assert identity(make_pod(busybox), busybox) == (0, 0, ())
    operator = container(image=OPERATOR)
    pod = make_pod(operator, securityContext={"runAsNonRoot": True, "fsGroup": 2000})
    assert identity(pod, operator) == (65532, 65532, (2000,))


def test_identity_from_security_contexts() -> None:
    spec = container(securityContext={"runAsUser": 1001})
    pod = make_pod(
        spec,
        securityContext={
            "runAsUser": 5,
            "runAsGroup": 6,
            "fsGroup": 7,
            "supplementalGroups": [8, 7],
        },
    )
    assert identity(pod, spec) == (1001, 6, (7, 8))
    only_user = container(securityContext={"runAsUser": 1001})
    # The user's primary group: a runtime looks it up in the image, a process plan has 0.
    assert identity(make_pod(only_user), only_user) == (1001, None, ())
    plan = plan_container(make_pod(only_user), only_user, {}, Sources(), HOST, POD_DIR)
    assert (plan.uid, plan.gid) == (1001, 0)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"runAsNonRoot": True}, "container has runAsNonRoot and image will run as root"),
        ({"runAsNonRoot": True, "runAsUser": 0}, "container's runAsUser breaks non-root policy"),
    ],
)
def test_run_as_non_root_refuses_root(context: dict[str, Any], message: str) -> None:
    spec = container(securityContext=context)
    with pytest.raises(ConfigError, match=message):
        identity(make_pod(spec), spec)


# --- volumes and mounts ---------------------------------------------------------------------


def test_references() -> None:
    spec = container(
        envFrom=[{"secretRef": {"name": "s1"}}, {"configMapRef": {"name": "c1"}}],
        env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}],
    )
    pod = make_pod(
        spec,
        initContainers=[
            container(
                name="init",
                env=[{"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "c2", "key": "k"}}}],
            )
        ],
        volumes=[
            KUBE_API_ACCESS,
            {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "s", "secret": {"secretName": "s3"}},
        ],
    )
    refs = references(pod)
    assert refs.secrets == {"s1", "s2", "s3"}
    assert refs.config_maps == {"c1", "c2", "kube-root-ca.crt"}
    assert refs.claims == {"data"}
    assert refs.tokens == {TokenRef(None, 3607)}


def test_volumes_on_the_host() -> None:
    pod = make_pod(
        container(),
        volumes=[
            KUBE_API_ACCESS,
            {"name": "data", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/srv"}},
            {"name": "sock", "hostPath": {"path": "/run/x.sock", "type": "Socket"}},
            {
                "name": "creds",
                "secret": {
                    "secretName": "s",
                    "defaultMode": 0o400,
                    "items": [{"key": "a", "path": "dir/a", "mode": 0o600}],
                },
            },
            {"name": "opt", "configMap": {"name": "missing", "optional": True}},
        ],
    )
    sources = Sources(
        secrets={"s": {"a": b"A", "b": b"B"}},
        config_maps={"kube-root-ca.crt": {"ca.crt": b"CA"}},
        claims={"claim": "/pv/1"},
        tokens={TokenRef(None, 3607): "jwt"},
    )
    volumes = plan_volumes(pod, sources, HOST, POD_DIR)
    api = volumes["kube-api-access-x1"]
    assert (api.kind, api.path, api.read_only) == (
        "files",
        f"{POD_DIR}/volumes/kube-api-access-x1",
        True,
    )
    assert {(f.path, f.data, f.mode) for f in api.files} == {
        ("token", b"jwt", 0o644),
        ("ca.crt", b"CA", 0o644),
        ("namespace", b"ns", 0o644),
    }
    assert (volumes["data"].kind, volumes["data"].path, volumes["data"].read_only) == (
        "claim",
        "/pv/1",
        True,
    )
    assert (volumes["scratch"].kind, volumes["scratch"].path) == (
        "empty",
        f"{POD_DIR}/volumes/scratch",
    )
    assert (volumes["host"].kind, volumes["host"].path, volumes["host"].create) == (
        "host",
        "/srv",
        True,
    )
    assert not volumes["sock"].create  # hostPath types other than (DirectoryOr)Create must exist
    assert [(f.path, f.data, f.mode) for f in volumes["creds"].files] == [("dir/a", b"A", 0o600)]
    assert volumes["opt"].files == ()


@pytest.mark.parametrize(
    ("volume", "sources", "message"),
    [
        (
            {"persistentVolumeClaim": {"claimName": "c"}},
            Sources(),
            'persistentvolumeclaim "c" is not bound',
        ),
        ({"secret": {"secretName": "s"}}, Sources(), 'secret "s" not found'),
        (
            {"configMap": {"name": "c", "items": [{"key": "k", "path": "p"}]}},
            Sources(config_maps={"c": {}}),
            "non-existent key: k",
        ),
        (
            {"secret": {"secretName": "s", "items": [{"key": "k", "path": "../x"}]}},
            Sources(secrets={"s": {"k": b""}}),
            "relative",
        ),
        ({"csi": {"driver": "x"}}, Sources(), "not supported"),
    ],
)
def test_volume_errors(volume: dict[str, Any], sources: Sources, message: str) -> None:
    pod = make_pod(container(), volumes=[{"name": "v", **volume}])
    with pytest.raises(VolumeError, match=message):
        plan_volumes(pod, sources, HOST, POD_DIR)


def test_container_plan() -> None:
    spec = container(
        command=["sh", "-c"],
        args=["echo $(GREETING) > /data/$(FILE)"],
        workingDir="/work",
        env=[{"name": "GREETING", "value": "hi"}, {"name": "FILE", "value": "out.txt"}],
        securityContext={"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        terminationMessagePolicy="FallbackToLogsOnError",
        volumeMounts=[
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/sub", "subPathExpr": "runs/$(FILE)", "readOnly": True},
            {
                "name": "kube-api-access-x1",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            },
        ],
    )
    pod = make_pod(
        spec,
        volumes=[KUBE_API_ACCESS, {"name": "data", "persistentVolumeClaim": {"claimName": "c"}}],
    )
    sources = Sources(
        config_maps={"kube-root-ca.crt": {"ca.crt": b"CA"}},
        claims={"c": "/pv/1"},
        tokens={TokenRef(None, 3607): "jwt"},
    )
    volumes = plan_volumes(pod, sources, HOST, POD_DIR)
    plan = plan_container(pod, spec, volumes, sources, HOST, POD_DIR)
    assert plan.argv == ("sh", "-c", "echo hi > /data/out.txt")
    assert plan.start_error is None
    assert plan.working_dir == "/work"
    assert (plan.uid, plan.gid, plan.hostname) == (0, 0, "p")
    assert plan.env["PATH"].startswith("/venv/bin:")
    assert (plan.env["HOME"], plan.env["HOSTNAME"], plan.env["GREETING"]) == ("/root", "p", "hi")
    assert plan.read_only_root and plan.no_new_privileges and plan.fallback_to_logs
    assert plan.mounts == (
        Mount("/pv/1", "/data"),
        Mount("/pv/1/runs/out.txt", "/sub", read_only=True, create=True),
        Mount(
            f"{POD_DIR}/volumes/kube-api-access-x1",
            "/var/run/secrets/kubernetes.io/serviceaccount",
            read_only=True,
        ),
        Mount(f"{POD_DIR}/containers/main/termination-log", "/dev/termination-log"),
    )


def test_container_plan_for_the_operator_image() -> None:
    spec = container(image=OPERATOR, args=["run"], terminationMessagePath="/tmp/msg")
    plan = plan_container(make_pod(spec), spec, {}, Sources(), HOST, POD_DIR)
    assert plan.argv == (PYTHON, "-m", "pinpoint_export_operator", "run")
    assert (plan.uid, plan.env["HOME"]) == (65532, "/")
    assert plan.mounts[-1] == Mount(f"{POD_DIR}/containers/main/termination-log", "/tmp/msg")


def test_a_container_with_nothing_to_run_gets_a_start_error() -> None:
    spec = container(image="nginx")
    plan = plan_container(make_pod(spec), spec, {}, Sources(), HOST, POD_DIR)
    assert plan.argv == ()
    assert plan.start_error is not None and "set the container's command" in plan.start_error


def test_mount_of_an_undeclared_volume_or_escaping_sub_path() -> None:
    spec = container(volumeMounts=[{"name": "nope", "mountPath": "/x"}])
    with pytest.raises(ConfigError, match="not defined"):
        plan_container(make_pod(spec), spec, {}, Sources(), HOST, POD_DIR)
    spec = container(volumeMounts=[{"name": "e", "mountPath": "/x", "subPath": "../../etc"}])
    pod = make_pod(spec, volumes=[{"name": "e", "emptyDir": {}}])
    volumes = plan_volumes(pod, Sources(), HOST, POD_DIR)
    with pytest.raises(ConfigError, match="subPath"):
        plan_container(pod, spec, volumes, Sources(), HOST, POD_DIR)


@pytest.mark.parametrize(
    ("requests", "nice"),
    [
        ({}, 19),  # BestEffort: cpu.shares 2
        ({"cpu": "10m"}, 19),
        ({"cpu": "100m"}, 10),  # shares 102, nice 10 weighs 110
        ({"cpu": "500m"}, 3),
        ({"cpu": "1"}, 0),
        ({"cpu": "4"}, 0),  # never above the control plane
    ],
)
def test_a_containers_cpu_request_sets_its_weight_as_a_nice_value(
    requests: dict[str, str], nice: int
) -> None:
    assert cpu_nice({"name": "c", "resources": {"requests": requests}}) == nice
