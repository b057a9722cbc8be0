"""Cluster-side set-up of the sandbox: its StorageClass, host-directory volumes, the Node."""

from __future__ import annotations

import uuid
from pathlib import Path

from kubernetes import client, config

from pinpoint_export_operator.sandbox import process

STORAGE_CLASS = "sandbox-hostpath"


def api_client(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def server_version(kubeconfig: Path) -> str:
    with api_client(kubeconfig) as api:
        return str(client.VersionApi(api).get_code().git_version)


def install_storage_class(kubeconfig: Path) -> None:
    """The default StorageClass: static host-directory volumes, bound as soon as they match."""
    body = client.V1StorageClass(
        metadata=client.V1ObjectMeta(
            name=STORAGE_CLASS,
            annotations={"storageclass.kubernetes.io/is-default-class": "true"},
        ),
        provisioner="kubernetes.io/no-provisioner",
        volume_binding_mode="Immediate",
        reclaim_policy="Retain",
    )
    with api_client(kubeconfig) as api:
        try:
            client.StorageV1Api(api).create_storage_class(body)
        except client.ApiException as error:
            if error.status != 409:
                raise


def wait_for_node(kubeconfig: Path, name: str, timeout: float = 60) -> None:
    def ready() -> bool:
        with api_client(kubeconfig) as api:
            node = client.CoreV1Api(api).read_node(name)
        conditions = node.status.conditions if node.status else None
        return any(c.type == "Ready" and c.status == "True" for c in conditions or [])

    process.wait_for(ready, timeout, f"node {name} Ready", interval=0.25)


def bound_claim(
    api: client.ApiClient,
    volumes_dir: Path,
    namespace: str,
    name: str,
    size: str = "1Gi",
    timeout: float = 30,
) -> Path:
    """Create a PersistentVolumeClaim bound to a new host-directory PV; return that directory.

    The PV is pre-bound to the claim (claimRef), so the real PV controller binds exactly this
    pair, as an administrator's static provisioning would.
    """
    host_dir = volumes_dir / f"{namespace}-{name}-{uuid.uuid4().hex[:8]}"
    host_dir.mkdir(parents=True)
    core = client.CoreV1Api(api)
    pv_name = f"pv-{host_dir.name}"[:63].rstrip("-")
    core.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(
                name=pv_name, labels={"sandbox/claim-namespace": namespace}
            ),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": size},
                access_modes=["ReadWriteOnce"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name=STORAGE_CLASS,
                host_path=client.V1HostPathVolumeSource(path=str(host_dir), type="Directory"),
                claim_ref=client.V1ObjectReference(namespace=namespace, name=name),
            ),
        )
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name=STORAGE_CLASS,
                volume_name=pv_name,
                resources=client.V1VolumeResourceRequirements(requests={"storage": size}),
            ),
        ),
    )

    def bound() -> bool:
        status = core.read_namespaced_persistent_volume_claim(name, namespace).status
        return status is not None and status.phase == "Bound"

    process.wait_for(
        bound,
        timeout,
        f"claim {namespace}/{name} Bound",
        interval=0.2,
    )
    return host_dir
