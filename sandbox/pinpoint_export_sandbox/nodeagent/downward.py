"""The downward API: pod fields (`fieldRef`) and container resources (`resourceFieldRef`) as the
kubelet renders them, for environment variables and downwardAPI volume files alike.
"""

from __future__ import annotations

import math
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from .errors import ConfigError
from .node import ALLOCATABLE, POD_IP
from .podspec import Json, spec_containers


def field_value(pod: Json, path: str, node_name: str) -> str:
    """A `fieldRef` value, as the kubelet resolves it."""
    metadata = pod["metadata"]
    for prefix, key in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        items = metadata.get(key) or {}
        if path == prefix:
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str(items.get(path[len(prefix) + 2 : -2], ""))
    simple = {
        "metadata.name": metadata["name"],
        "metadata.namespace": metadata.get("namespace", "default"),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName") or node_name,
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        "status.podIP": POD_IP,
        "status.podIPs": POD_IP,
        "status.hostIP": POD_IP,
        "status.hostIPs": POD_IP,
    }
    if path not in simple:
        raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")
    return str(simple[path])


def resource_value(pod: Json, container_name: str, resource: str, divisor: str | None) -> str:
    """A `resourceFieldRef` value: rounded up in units of `divisor`; unset limits are the node's."""
    container = next((c for c in spec_containers(pod) if c["name"] == container_name), None)
    if container is None:
        raise ConfigError(f"resourceFieldRef: no container {container_name!r}")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f"unsupported resourceFieldRef resource {resource!r}")
    amount = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if amount is None:
        amount = ALLOCATABLE[name] if kind == "limits" else "0"
    quantity: Decimal = parse_quantity(amount) / parse_quantity(divisor or "1")  # type: ignore[no-untyped-call]
    return str(math.ceil(quantity))
