"""etcd, kube-apiserver and kube-controller-manager on loopback, as real processes."""

from __future__ import annotations

import base64
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pinpoint_export_sandbox import binaries, pki, process

SERVICE_CIDR = "10.0.0.0/24"
# Writes are audited (metadata only), so benchmarks can count each client's API writes.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# What the sandbox needs of kube-controller-manager: Jobs and their pods, garbage collection,
# namespaces, ServiceAccounts and their tokens, kube-root-ca.crt, TTL after finished, PVC
# binding, Deployments for the Helm chart, and the aggregated view/edit/admin roles.
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "ttl-after-finished-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",
    "persistentvolume-protection-controller",
    "deployment-controller",
    "replicaset-controller",
    "pod-garbage-collector-controller",
    "clusterrole-aggregation-controller",
)


def write_kubeconfig(path: Path, server: str, ca: Path, client: pki.KeyPair, user: str) -> Path:
    """A self-contained kubeconfig (certificates embedded), so it can be copied anywhere."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sandbox",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user}}],
        "current-context": "sandbox",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """Starts the three processes under `state_dir`; `stop()` ends them in reverse order."""

    state_dir: Path
    etcd_port: int = field(default_factory=process.free_port)
    etcd_peer_port: int = field(default_factory=process.free_port)
    apiserver_port: int = field(default_factory=process.free_port)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def operator_kubeconfig(self) -> Path:
        """An admin identity of its own (user `pinpoint-export-operator`), told apart in audit."""
        return self.state_dir / "operator.kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "logs" / "audit.log"

    @property
    def ca(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    def start(self) -> None:
        pki_dir = self.state_dir / "pki"
        logs = self.state_dir / "logs"
        ca = pki.CertificateAuthority(pki_dir)
        serving = ca.issue("apiserver", "kube-apiserver", server=True)
        admin = ca.issue("admin", "sandbox-admin", organization="system:masters")
        kcm = ca.issue("controller-manager", "system:kube-controller-manager")
        sa = pki.service_account_keys(pki_dir)
        write_kubeconfig(self.kubeconfig, self.server, ca.cert, admin, "sandbox-admin")
        operator = ca.issue("operator", "pinpoint-export-operator", organization="system:masters")
        write_kubeconfig(self.operator_kubeconfig, self.server, ca.cert, operator, "operator")
        audit_policy = self.state_dir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        kcm_kubeconfig = write_kubeconfig(
            self.state_dir / "controller-manager.kubeconfig", self.server, ca.cert, kcm, "kcm"
        )
        self._start_etcd(logs)
        self._start(
            "kube-apiserver",
            logs,
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # A loopback address cannot back the `kubernetes` Service's endpoints; pods reach
            # the API server directly through KUBERNETES_SERVICE_HOST instead.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.state_dir / 'apiserver'}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-maxsize=200",
            # The operator's load test runs hundreds of exports at once on one machine.
            "--max-requests-inflight=1000",
            "--max-mutating-requests-inflight=500",
        )
        process.wait_for(
            lambda: self._get("/readyz") == "ok",
            90,
            "kube-apiserver /readyz",
            interval=0.25,
            alive=self._procs["kube-apiserver"],
            log=logs / "kube-apiserver.log",
        )
        self._start(
            "kube-controller-manager",
            logs,
            f"--kubeconfig={kcm_kubeconfig}",
            f"--authentication-kubeconfig={kcm_kubeconfig}",
            f"--authorization-kubeconfig={kcm_kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={process.free_port()}",
            f"--cert-dir={self.state_dir / 'controller-manager'}",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={sa.key}",
            f"--root-ca-file={ca.cert}",
            # Each controller acts as its own ServiceAccount with its bootstrap role, as in
            # kubeadm clusters; the controller manager's own identity may do almost nothing.
            "--use-service-account-credentials=true",
            "--leader-elect=false",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--concurrent-job-syncs=20",
            "--concurrent-gc-syncs=20",
            "--profiling=false",
        )

    def _start_etcd(self, logs: Path) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._start(
            "etcd",
            logs,
            "--name=sandbox",
            f"--data-dir={self.state_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        )

    def _start(self, name: str, logs: Path, *args: str) -> None:
        self._procs[name] = process.start([binaries.find(name), *args], logs / f"{name}.log")

    def _get(self, path: str) -> str:
        """GET an API path as the admin user (mutual TLS), for readiness checks."""
        pki_dir = self.state_dir / "pki"
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
        with urllib.request.urlopen(self.server + path, context=context, timeout=2) as response:
            return str(response.read().decode())

    def check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")

    def stop(self) -> None:
        for proc in reversed(self._procs.values()):
            process.stop(proc)
        self._procs.clear()
