"""Fetches what a pod refers to from the API server into `Sources`, as the kubelet does:
Secrets and ConfigMaps, the host directories of the PVs bound to its claims, and service-account
tokens bound to the pod. Kept apart from the planners so that planning stays pure.
"""

from __future__ import annotations

import base64

from pinpoint_export_sandbox.provisioner import PROVISIONED_BY, PROVISIONER

from .errors import VolumeError
from .kube import Json, Kube
from .podspec import Sources, TokenRef, references


def fetch_sources(kube: Kube, pod: Json, previous: Sources, with_volumes: bool) -> Sources:
    """The Secrets and ConfigMaps `pod` refers to; its claims' directories and its tokens too
    `with_volumes`, else those of `previous`."""
    refs = references(pod)
    namespace = f"/api/v1/namespaces/{pod['metadata'].get('namespace', 'default')}"
    secrets, config_maps = {}, {}
    for name in refs.secrets:
        secret = kube.get(f"{namespace}/secrets/{name}")
        if secret is not None:
            secrets[name] = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    for name in refs.config_maps:
        config_map = kube.get(f"{namespace}/configmaps/{name}")
        if config_map is not None:
            data = {k: v.encode() for k, v in (config_map.get("data") or {}).items()}
            binary = {
                k: base64.b64decode(v) for k, v in (config_map.get("binaryData") or {}).items()
            }
            config_maps[name] = {**data, **binary}
    claims, tokens = previous.claims, previous.tokens
    fs_group_ignored = previous.fs_group_ignored
    if with_volumes:
        volumes = {name: claim_volume(kube, pod, name) for name in refs.claims}
        claims = {name: path for name, (path, _) in volumes.items()}
        fs_group_ignored = frozenset(name for name, (_, owned) in volumes.items() if not owned)
        tokens = {ref: service_account_token(kube, pod, ref) for ref in refs.tokens}
    return Sources(secrets, config_maps, claims, tokens, fs_group_ignored)


def manages_ownership(pv: Json) -> bool:
    """Whether the kubelet applies fsGroup to this PV's volume: a `local` volume, yes; a
    `hostPath` one, no (as NFS), except the sandbox provisioner's, which stand for a CSI
    driver's volumes whose CSIDriver says `fsGroupPolicy: File`."""
    spec = pv.get("spec") or {}
    annotations = (pv.get("metadata") or {}).get("annotations") or {}
    return "local" in spec or annotations.get(PROVISIONED_BY) == PROVISIONER


def claim_volume(kube: Kube, pod: Json, claim: str) -> tuple[str, bool]:
    """The host directory of the PV bound to `claim`, and whether fsGroup applies to it."""
    namespace = pod["metadata"].get("namespace", "default")
    pvc = kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
    if pvc is None:
        raise VolumeError(f'persistentvolumeclaim "{claim}" not found')
    volume_name = pvc["spec"].get("volumeName")
    if (pvc.get("status") or {}).get("phase") != "Bound" or not volume_name:
        raise VolumeError(f'persistentvolumeclaim "{claim}" is not bound')
    pv = kube.get(f"/api/v1/persistentvolumes/{volume_name}")
    spec = (pv or {}).get("spec") or {}
    path = (spec.get("hostPath") or spec.get("local") or {}).get("path")
    if not path:
        raise VolumeError(f'persistentvolume "{volume_name}" has no hostPath or local path')
    return str(path), manages_ownership(pv or {})


def service_account_token(kube: Kube, pod: Json, ref: TokenRef) -> str:
    """A service-account token bound to `pod` (TokenRequest), as the kubelet gets one."""
    metadata = pod["metadata"]
    namespace = metadata.get("namespace", "default")
    account = pod["spec"].get("serviceAccountName") or "default"
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [ref.audience] if ref.audience else [],
            "expirationSeconds": ref.expiration_seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": metadata["name"],
                "uid": metadata["uid"],
            },
        },
    }
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
    return str(kube.request("POST", path, body=request)["status"]["token"])
