"""The pod spec as the planners read it: its containers and the API objects it refers to.

`references` names the Secrets, ConfigMaps, claims and service-account tokens a pod needs; the
caller fetches them into `Sources`, so planning stays pure and is unit-tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

Json = dict[str, Any]


@dataclass(frozen=True)
class TokenRef:
    """A projected service-account token to request for the pod."""

    audience: str | None
    expiration_seconds: int


@dataclass(frozen=True)
class Sources:
    """API objects the pod refers to, fetched by the caller. Absent means not found."""

    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    config_maps: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    claims: Mapping[str, str] = field(default_factory=dict)  # claim name -> host directory
    tokens: Mapping[TokenRef, str] = field(default_factory=dict)
    # Claims whose volume plugin does not manage ownership, so that fsGroup leaves their
    # directory as it is: a hostPath PV (as NFS), unlike a `local` one or the provisioner's.
    fs_group_ignored: frozenset[str] = frozenset()


@dataclass(frozen=True)
class References:
    secrets: frozenset[str]
    config_maps: frozenset[str]
    claims: frozenset[str]
    tokens: frozenset[TokenRef]


def spec_containers(pod: Json) -> list[Json]:
    spec = pod["spec"]
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def projected_sources(volume: Json) -> list[Json]:
    return list((volume.get("projected") or {}).get("sources") or [])


def references(pod: Json) -> References:
    """The API objects a pod's containers and volumes refer to."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    claims: set[str] = set()
    tokens: set[TokenRef] = set()
    for container in spec_containers(pod):
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if "secretKeyRef" in value_from:
                secrets.add(value_from["secretKeyRef"]["name"])
            if "configMapKeyRef" in value_from:
                config_maps.add(value_from["configMapKeyRef"]["name"])
    for volume in pod["spec"].get("volumes") or []:
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "persistentVolumeClaim" in volume:
            claims.add(volume["persistentVolumeClaim"]["claimName"])
        for source in projected_sources(volume):
            if "secret" in source:
                secrets.add(source["secret"]["name"])
            if "configMap" in source:
                config_maps.add(source["configMap"]["name"])
            if "serviceAccountToken" in source:
                tokens.add(token_ref(source["serviceAccountToken"]))
    return References(
        frozenset(secrets), frozenset(config_maps), frozenset(claims), frozenset(tokens)
    )


def token_ref(projection: Json) -> TokenRef:
    return TokenRef(projection.get("audience") or None, projection.get("expirationSeconds", 3600))


def referenced_data(
    objects: Mapping[str, Mapping[str, bytes]],
    kind: str,
    ref: Json,
    error: type[Exception] = ConfigError,
    name_key: str = "name",
) -> Mapping[str, bytes] | None:
    """A referenced object's data, None if it is missing and optional; a missing key is for the
    caller."""
    data = objects.get(ref[name_key])
    if data is None and not ref.get("optional", False):
        raise error(f'{kind} "{ref[name_key]}" not found')
    return data
