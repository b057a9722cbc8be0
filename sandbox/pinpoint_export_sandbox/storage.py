"""Cluster-side set-up of the sandbox: its StorageClass, host-directory volumes, the Node."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config

from pinpoint_export_sandbox import process

STORAGE_CLASS = "sandbox-hostpath"


def api_client(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))
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
    api: client.ApiClient, namespace: str, name: str, size: str = "1Gi", timeout: float = 30
) -> Path:
    """Create a PersistentVolumeClaim, wait until the provisioner has bound it; its directory."""
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": size}),
            ),
        ),
    )
    return claim_directory(api, namespace, name, timeout)


def claim_directory(api: client.ApiClient, namespace: str, name: str, timeout: float = 30) -> Path:
    """The host directory behind a claim, once it is bound."""
    core = client.CoreV1Api(api)

    def volume() -> str | None:
        claim = core.read_namespaced_persistent_volume_claim(name, namespace)
        bound = claim.status is not None and claim.status.phase == "Bound"
        return claim.spec.volume_name if bound and claim.spec else None

    volume_name = process.wait_for(volume, timeout, f"claim {namespace}/{name} Bound", interval=0.2)
    pv = core.read_persistent_volume(volume_name)
    assert pv.spec is not None and pv.spec.host_path is not None
    return Path(pv.spec.host_path.path)
