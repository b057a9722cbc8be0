"""The Helm chart on the sandbox, with Helm 3 and Helm 4.

Rendering: `helm lint` and `helm template` for the default values and every ci/ values file,
each rendered object accepted by the API server (`kubectl apply --dry-run=server`), invalid
values refused by the schema, every variable of the Deployment one the operator reads, its
rollout as documented (Recreate alone, one at a time with peering). Installing: the operator
runs from the chart in a namespace that enforces Pod Security `restricted`, as the chart's
ServiceAccount and with the chart's RBAC alone; a namespace-scoped install sees nothing outside
its namespaces; upgrade rolls the Deployment; uninstall leaves CRDs and exports; two replicas
with Kopf peering fail over without duplicating a Pinpoint job.

While a chart's operator runs, the session's out-of-cluster operator is stopped: two operators
would handle the same exports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_operator import api as names
from pinpoint_export_operator import config
from pinpoint_export_sandbox import binaries, process, storage
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.stack import SandboxEnv

from .conftest import ROOT, Kubectl, export_manifest, read_export, wait_phase

pytestmark = pytest.mark.e2e

CHART = ROOT / "charts" / "pinpoint-export-operator"
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
HELMS = ("helm3", "helm4")
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}


# --- helm -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Helm:
    name: str
    binary: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed:\n{done.stderr}")
        return done


@pytest.fixture(scope="session", params=HELMS)
def helm(
    request: pytest.FixtureRequest, sandbox: SandboxEnv, tmp_path_factory: pytest.TempPathFactory
) -> Helm:
    home = tmp_path_factory.mktemp(request.param)
    env = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig),
        **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")},
    }
    return Helm(request.param, binaries.find(request.param), env)


@pytest.fixture(scope="session")
def kube_version(sandbox: SandboxEnv) -> str:
    return storage.server_version(sandbox.kubeconfig).lstrip("v")


@pytest.fixture(scope="session")
def kopf_crds(kubectl: Kubectl, crds: None) -> None:
    """Our CRDs (the session's `crds`) and the chart's Kopf peering CRDs, Established."""
    path = str(CHART / "crds" / "kopf-peerings.yaml")
    kubectl("apply", "--server-side", "-f", path)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", path)


def create_namespace(api: client.ApiClient, prefix: str, labels: dict[str, str]) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


@pytest.fixture
def restricted_namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace that enforces (and warns about) Pod Security `restricted`."""
    name = create_namespace(api, "ppe-system", RESTRICTED)
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def render(helm: Helm, namespace: str, kube_version: str, *args: str) -> str:
    done = helm(
        "template", "ppe", str(CHART), "--namespace", namespace, "--kube-version", kube_version,
        *args,
    )  # fmt: skip
    return done.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", ["(defaults)", *CI_VALUES])
def test_lint_and_render_are_accepted_by_the_api_server(
    values: str,
    helm: Helm,
    restricted_namespace: str,
    kube_version: str,
    kubectl: Kubectl,
    kopf_crds: None,
) -> None:
    """In a namespace that warns about Pod Security `restricted`: no warning either."""
    args = [] if values == "(defaults)" else ["--values", str(CHART / "ci" / values)]
    helm("lint", str(CHART), "--strict", "--kube-version", kube_version, *args)
    rendered = render(helm, restricted_namespace, kube_version, *args)
    kinds = {doc["kind"] for doc in documents(rendered)}
    assert "Deployment" in kinds and kinds & {"ClusterRole", "Role"}, kinds

    applied = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert applied.stdout.count("(server dry run)") == len(documents(rendered))
    assert "Warning" not in applied.stderr, applied.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"logLevel": "LOUD"}, "logLevel"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"livenessPort": 70000}, "livenessPort"),
        ({"image": {"digest": "latest"}}, "digest"),
        ({"highAvailability": {"enabled": True, "replicas": 1}}, "replicas"),
        ({"replicaCount": 2}, "replicaCount"),  # a misspelt key, not silently ignored
    ],
    ids=["log-level", "namespace", "port", "digest", "ha-replicas", "unknown-key"],
)
def test_values_that_violate_the_schema_are_refused(
    values: dict[str, Any], complaint: str, helm: Helm, kube_version: str, tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    refused = helm(
        "template", "ppe", str(CHART), "--kube-version", kube_version, "--values", str(path),
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "schema" in refused.stderr and complaint in refused.stderr, refused.stderr


def test_service_monitor_scrapes_the_metrics_service(helm: Helm, kube_version: str) -> None:
    """Rendered only (the sandbox has no Prometheus Operator CRDs)."""
    rendered = documents(
        render(helm, "ops", kube_version, "--set", "metrics.serviceMonitor.enabled=true")
    )
    (monitor,) = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    (service,) = [d for d in rendered if d["kind"] == "Service"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        p["name"] for p in service["spec"]["ports"]
    ]
    off = helm(
        "template", "ppe", str(CHART), "--kube-version", kube_version,
        "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.port=0", check=False,
    )  # fmt: skip
    assert off.returncode != 0 and "metrics.serviceMonitor.enabled needs" in off.stderr


def test_every_variable_the_chart_sets_is_one_the_operator_reads(
    helm: Helm, kube_version: str
) -> None:
    """Rendered with every optional setting on: a variable the operator does not read would be
    a setting silently lost."""
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    read = set(re.findall(r"\[env\s+(\w+)\]", parser.format_help()))  # help may wrap
    values = [
        "--values", str(CHART / "ci" / "ha-values.yaml"),
        "--set", "metrics.perSchedule=true", "--set", "aws.sessionTags=true",
        "--set", "aws.stsEndpointUrl=https://sts.eu-west-1.amazonaws.com",
        "--set", "aws.allowedRoles.team-a={arn:aws:iam::1:role/a}",
        "--set", "copier.priorityClassName=batch-low",
        "--set", "copier.imagePullSecrets[0].name=regcred",
        "--set", "copier.podLabels.team=data",
    ]  # fmt: skip
    (deployment,) = [
        d
        for d in documents(render(helm, "ops", kube_version, *values))
        if d["kind"] == "Deployment"
    ]
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert {name for name in env if name.startswith("PPE_")} <= read
    assert env["PPE_METRICS_PER_SCHEDULE"] == "true"


@pytest.mark.parametrize("values", ["(defaults)", "ha-values.yaml"])
def test_one_replica_is_recreated_and_replicas_roll_one_at_a_time(
    values: str, helm: Helm, kube_version: str
) -> None:
    """One replica: never two operators at once, even for a moment. With peering: a new replica
    starts before an old one stops, and a voluntary disruption takes one at a time."""
    args = [] if values == "(defaults)" else ["--values", str(CHART / "ci" / values)]
    rendered = documents(render(helm, "ops", kube_version, *args))
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    budgets = [d for d in rendered if d["kind"] == "PodDisruptionBudget"]
    if values == "(defaults)":
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        assert budgets == []
        return
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    (budget,) = budgets
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]


def test_alerts_and_dashboard_are_the_chart_files_unchanged(helm: Helm, kube_version: str) -> None:
    """Rendered only (the sandbox has no Prometheus Operator CRDs): both opt-in, and the
    PrometheusRule and the ConfigMap carry files/alerts.yaml (its stuck threshold set from the
    values) and files/dashboard.json as is."""
    files = CHART / "files"
    defaults = {d["kind"] for d in documents(render(helm, "ops", kube_version))}
    assert not defaults & {"PrometheusRule", "ConfigMap"}, defaults
    enabled = [
        "--set", "metrics.prometheusRule.enabled=true",
        "--set", "metrics.prometheusRule.labels.release=prometheus",
        "--set", "metrics.grafanaDashboard.enabled=true",
    ]  # fmt: skip
    helm("lint", str(CHART), "--strict", "--kube-version", kube_version, *enabled)
    rendered = documents(render(helm, "ops", kube_version, *enabled))
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    # As is, but for PinpointExportStuck's threshold: the default exportStuckAfter, 12h.
    stuck = "12 * 3600  # metrics.prometheusRule.exportStuckAfter"
    alerts = (files / "alerts.yaml").read_text().replace(stuck, str(12 * 3600))
    assert rule["spec"] == yaml.safe_load(alerts)
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    (dashboard,) = [d for d in rendered if d["kind"] == "ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    assert json.loads(content) == json.loads((files / "dashboard.json").read_text())

    # The sidecar's label can be replaced, not only added to (null drops a default key).
    relabel = [
        "--set", "metrics.grafanaDashboard.labels.grafana_dashboard=null",
        "--set", "metrics.grafanaDashboard.labels.dashboards=ops",
    ]  # fmt: skip
    relabelled = documents(render(helm, "ops", kube_version, *enabled, *relabel))
    (dashboard,) = [d for d in relabelled if d["kind"] == "ConfigMap"]
    labels = dashboard["metadata"]["labels"]
    assert labels["dashboards"] == "ops" and "grafana_dashboard" not in labels
    # Alerts on an operator without metrics would only say it is down.
    off = helm(
        "template", "ppe", str(CHART), "--kube-version", kube_version, *enabled,
        "--set", "metrics.port=0", check=False,
    )  # fmt: skip
    assert off.returncode != 0 and "metrics.prometheusRule.enabled needs" in off.stderr


# --- installing -----------------------------------------------------------------------------


@dataclass
class Release:
    """A release of the chart; `values` are the sandbox's, merged with the test's."""

    helm: Helm
    namespace: str
    sandbox: SandboxEnv
    values_file: Path
    name: str = "ppe"
    installed: bool = field(default=False, init=False)

    @property
    def fullname(self) -> str:
        return f"{self.name}-pinpoint-export-operator"

    def _write_values(self, values: dict[str, Any]) -> None:
        # The chart's default image: the node agent runs it as a container (`make image`).
        base: dict[str, Any] = {
            "aws": {
                "region": self.sandbox.s3.region,
                "s3EndpointUrl": self.sandbox.s3.endpoint_url,
            },
            "extraEnv": [{"name": "AWS_ENDPOINT_URL_PINPOINT", "value": self.sandbox.pinpoint_url}],
            # Pods of the sandbox share the host's network: no fixed ports.
            "livenessPort": process.free_port(),
            "metrics": {"port": process.free_port()},
            "logFormat": "text",
        }
        self.values_file.write_text(yaml.safe_dump(_merge(base, values)))

    def install(self, **values: Any) -> None:
        self._write_values(values)
        self.helm("install", self.name, str(CHART), *self._common())
        self.installed = True

    def upgrade(self, **values: Any) -> None:
        self._write_values(values)
        self.helm("upgrade", self.name, str(CHART), *self._common())

    def uninstall(self) -> None:
        if self.installed:
            self.helm("uninstall", self.name, "--namespace", self.namespace, "--wait")
            self.installed = False

    def _common(self) -> list[str]:
        return ["--namespace", self.namespace, "--values", str(self.values_file), "--wait",
                "--timeout", "120s"]  # fmt: skip

    def pods(self, api: client.ApiClient) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/instance={self.name}"
        pods = client.CoreV1Api(api).list_namespaced_pod(self.namespace, label_selector=selector)
        return [p for p in pods.items if not p.metadata.deletion_timestamp]

    def logs(self) -> str:
        """The operator containers' output, from the node agent's pod directories."""
        pods_dir = self.sandbox.state_dir / "node" / "pods"
        return "\n".join(
            f"--- {log.parent.name}\n{log.read_text(errors='replace')}"
            for log in sorted(pods_dir.glob(f"{self.namespace}_*/operator.log"))
        )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def release(
    helm: Helm,
    restricted_namespace: str,
    sandbox: SandboxEnv,
    kopf_crds: None,
    session_operator_stopped: None,
    emulator: EmulatorAdmin,
    tmp_path: Path,
) -> Iterator[Release]:
    """A release (to install) in a namespace enforcing Pod Security `restricted`, uninstalled
    before the session's operator starts again."""
    emulator.reset(state=False)
    chart = Release(helm, restricted_namespace, sandbox, tmp_path / "values.yaml")
    yield chart
    # pytest shows a teardown's output only when the test failed: the operator's logs then.
    print(chart.logs())  # noqa: T201
    chart.uninstall()
    emulator.reset(state=False)


@pytest.fixture
def export_in(
    api: client.ApiClient,
    kubectl: Kubectl,
    emulator: EmulatorAdmin,
    bucket: str,
) -> Callable[..., str]:
    """Apply an export of a new seeded app in `namespace`; returns the app id."""

    def apply(namespace: str, name: str, endpoints: int = 50) -> str:
        app = emulator.create_app()
        emulator.seed(app, endpoints)
        manifest = export_manifest(name, app)
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
        return app

    return apply


def service_account_client(api: client.ApiClient, namespace: str, account: str) -> client.ApiClient:
    """A client authenticated by a TokenRequest token of the ServiceAccount."""
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            account, namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
        )
        .status.token
    )
    configuration = client.Configuration()
    configuration.host = api.configuration.host
    configuration.ssl_ca_cert = api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def denied(call: Callable[[], Any]) -> client.ApiException:
    with pytest.raises(client.ApiException) as refused:
        call()
    assert refused.value.status == 403, refused.value
    return refused.value


def test_install_upgrade_uninstall(
    release: Release,
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    export_in: Callable[..., str],
    emulator: EmulatorAdmin,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    """Cluster-wide, in a `restricted` namespace; an export in another namespace completes."""
    release.install()
    (pod,) = release.pods(api)
    # Admitted under `restricted` and run by the node agent with the chart's ServiceAccount.
    assert pod.status.phase == "Running"
    assert pod.spec.service_account_name == release.fullname
    token_mounts = [
        m.mount_path
        for m in pod.spec.containers[0].volume_mounts
        if "serviceaccount" in m.mount_path
    ]
    assert token_mounts == ["/var/run/secrets/kubernetes.io/serviceaccount"]

    bound_claim("exports")
    export_in(namespace, "first")
    first = wait_phase(api, namespace, "first", ("Succeeded", "Failed"))
    assert first["status"]["phase"] == "Succeeded", first["status"]
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "ppe/first", "--timeout=10s")

    # Changed values roll the Deployment: a new ReplicaSet, a new pod with the new settings.
    # Without Secret access, an export naming a Secret fails with a 403 that names the
    # chart's ServiceAccount: the operator's requests are authorised by the chart's RBAC alone.
    release.upgrade(logLevel="DEBUG", rbac={"readSecrets": False})
    (new_pod,) = release.pods(api)
    template_hash = "pod-template-hash"
    assert new_pod.metadata.labels[template_hash] != pod.metadata.labels[template_hash]
    env = {e.name: e.value for e in new_pod.spec.containers[0].env}
    assert env["PPE_LOG_LEVEL"] == "DEBUG"
    export_in(namespace, "second")
    second = wait_phase(api, namespace, "second", ("Succeeded", "Failed"))
    message = second["status"]["message"]
    assert second["status"]["phase"] == "Failed", second["status"]
    assert "403" in message, message
    assert f"system:serviceaccount:{release.namespace}:{release.fullname}" in message, message

    # Uninstalling removes the operator, and leaves the CRDs and the exports as they were.
    release.uninstall()
    # helm's --wait covers the Deployment; its pods go after it, by the garbage collector.
    process.wait_for(lambda: not release.pods(api), 60, "the operator's pods deleted")
    for crd in ("pinpointexports", "pinpointexportschedules"):
        kubectl("get", "crd", f"{crd}.{names.GROUP}")
    assert read_export(api, namespace, "first")["status"]["phase"] == "Succeeded"
    assert read_export(api, namespace, "second")["status"]["phase"] == "Failed"
    assert emulator.counters().get("CreateExportJob") == 1


def test_namespace_scoped_install_sees_only_its_namespaces(
    release: Release,
    api: client.ApiClient,
    namespace: str,
    export_in: Callable[..., str],
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    outside = create_namespace(api, "outside", {})
    try:
        export_in(outside, "ignored")
        release.install(watchNamespaces=[namespace])

        with service_account_client(api, release.namespace, release.fullname) as as_operator:
            custom = client.CustomObjectsApi(as_operator)
            core = client.CoreV1Api(as_operator)
            custom.list_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.EXPORTS
            )
            core.read_namespaced_secret(credentials_secret, namespace)
            for call in (
                lambda: custom.list_namespaced_custom_object(
                    names.GROUP, names.VERSION, outside, names.EXPORTS
                ),
                lambda: custom.list_cluster_custom_object(
                    names.GROUP, names.VERSION, names.EXPORTS
                ),
                lambda: core.list_namespaced_secret(namespace),
                lambda: core.read_namespaced_secret("anything", outside),
                lambda: client.BatchV1Api(as_operator).list_namespaced_job(outside),
            ):
                denied(call)

        bound_claim("exports")
        export_in(namespace, "inside")
        inside = wait_phase(api, namespace, "inside", ("Succeeded", "Failed"))
        assert inside["status"]["phase"] == "Succeeded", inside["status"]
        # Applied before the inside export finished: never touched.
        assert "status" not in read_export(api, outside, "ignored")
    finally:
        client.CoreV1Api(api).delete_namespace(outside)


def test_high_availability_fails_over_without_duplicating_an_export(
    release: Release,
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    export_in: Callable[..., str],
    emulator: EmulatorAdmin,
    credentials_secret: str,
    bound_claim: Callable[..., Path],
) -> None:
    # Both replicas share the host's network in the sandbox: no liveness or metrics ports.
    release.install(highAvailability={"enabled": True}, livenessPort=0, metrics={"port": 0})
    custom = client.CustomObjectsApi(api)

    def peers() -> dict[str, Any]:
        peering = custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", release.fullname
        )
        return dict(peering.get("status") or {})

    pod_names = {p.metadata.name for p in release.pods(api)}
    assert len(pod_names) == 2
    process.wait_for(lambda: set(peers()) == pod_names, 60, "both replicas in the peering")
    # Kopf freezes every replica when two have the same priority.
    priorities = {name: peer["priority"] for name, peer in peers().items()}
    assert len(set(priorities.values())) == 2, f"replicas need distinct priorities: {priorities}"
    active = max(priorities, key=priorities.__getitem__)

    bound_claim("exports")
    emulator.set_faults(freeze_status="PROCESSING")
    export_in(namespace, "ha")
    wait_phase(api, namespace, "ha", ("Exporting",))
    process.wait_for(lambda: emulator.counters().get("CreateExportJob") == 1, 60, "the export job")

    kubectl("delete", "pod", "-n", release.namespace, active, "--wait=true")
    process.wait_for(lambda: active not in peers(), 60, "the deleted replica to leave the peering")
    emulator.set_faults()
    export = wait_phase(api, namespace, "ha", ("Succeeded", "Failed"))
    assert export["status"]["phase"] == "Succeeded", export["status"]
    assert emulator.counters().get("CreateExportJob") == 1
