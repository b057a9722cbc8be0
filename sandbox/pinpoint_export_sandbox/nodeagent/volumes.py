"""Pod volumes -> host directories and container mounts.

Where each volume lives on the host, the files to write for Secret, ConfigMap, downwardAPI and
projected volumes, and each container's mounts: subPaths, read-only, the operator image's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from .downward import field_value, resource_value
from .env import expand
from .errors import ConfigError, VolumeError
from .images import is_operator_image
from .node import Host
from .podspec import Json, Sources, projected_sources, referenced_data, token_ref

DEFAULT_FILE_MODE = 0o644


@dataclass(frozen=True)
class File:
    path: str  # relative to the volume's directory
    data: bytes
    mode: int


VolumeKind = Literal["host", "claim", "empty", "files"]


@dataclass(frozen=True)
class Volume:
    name: str
    path: str  # on the host
    kind: VolumeKind  # host: hostPath; claim: a PV's directory; empty: emptyDir; files: written
    files: tuple[File, ...] = ()
    read_only: bool = False
    create: bool = True  # host, claim: made if missing (hostPath types other than "" and
    # DirectoryOrCreate must exist)
    manages_ownership: bool = True  # fsGroup applies (the kubelet's SetVolumeOwnership)


@dataclass(frozen=True)
class Mount:
    source: str  # on the host
    target: str  # in the container
    read_only: bool = False
    create: bool = False  # a subPath: created as a directory if missing, like the kubelet


def pod_volume_dir(pod_dir: str, name: str) -> str:
    return f"{pod_dir}/volumes/{name}"


def container_dir(pod_dir: str, name: str) -> str:
    return f"{pod_dir}/containers/{name}"


def _relative(path: str, what: str) -> str:
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise VolumeError(f"{what}: {path!r} must be a relative path without '..'")
    return path


def _files(
    data: Mapping[str, bytes] | None, source: Json, default_mode: int, what: str
) -> list[File]:
    """The files of a secret/configMap projection: every key, or the listed items."""
    if data is None:
        return []
    items = source.get("items")
    if not items:
        return [File(_relative(k, what), v, default_mode) for k, v in sorted(data.items())]
    files = []
    for item in items:
        if item["key"] not in data:
            if source.get("optional", False):
                continue
            raise VolumeError(f"{what} references non-existent key: {item['key']}")
        files.append(
            File(_relative(item["path"], what), data[item["key"]], item.get("mode", default_mode))
        )
    return files


def _downward_files(pod: Json, items: Iterable[Json], default_mode: int, host: Host) -> list[File]:
    files = []
    for item in items:
        try:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"]["fieldPath"], host.node_name)
            else:
                ref = item["resourceFieldRef"]
                value = resource_value(
                    pod, ref["containerName"], ref["resource"], ref.get("divisor")
                )
        except ConfigError as error:
            raise VolumeError(str(error)) from error
        path = _relative(item["path"], "downwardAPI")
        files.append(File(path, value.encode(), item.get("mode", default_mode)))
    return files


def _projected_files(pod: Json, volume: Json, sources: Sources, host: Host) -> list[File]:
    projected = volume["projected"]
    mode = projected.get("defaultMode", DEFAULT_FILE_MODE)
    files: list[File] = []
    for source in projected_sources(volume):
        if "secret" in source:
            data = referenced_data(sources.secrets, "secret", source["secret"], VolumeError)
            files += _files(data, source["secret"], mode, f"secret {source['secret']['name']}")
        elif "configMap" in source:
            data = referenced_data(
                sources.config_maps, "configmap", source["configMap"], VolumeError
            )
            files += _files(
                data, source["configMap"], mode, f"configmap {source['configMap']['name']}"
            )
        elif "downwardAPI" in source:
            files += _downward_files(pod, source["downwardAPI"].get("items") or [], mode, host)
        elif "serviceAccountToken" in source:
            projection = source["serviceAccountToken"]
            token = sources.tokens.get(token_ref(projection))
            if token is None:
                raise VolumeError("service account token not available")
            files.append(File(_relative(projection["path"], "token"), token.encode(), mode))
        else:
            raise VolumeError(f"projected volume source {sorted(source)} is not supported")
    return files


def plan_volumes(pod: Json, sources: Sources, host: Host, pod_dir: str) -> dict[str, Volume]:
    """Where each of the pod's volumes lives on the host, and the files to write for it."""
    volumes: dict[str, Volume] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        own = pod_volume_dir(pod_dir, name)
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            path = sources.claims.get(claim["claimName"])
            if path is None:
                raise VolumeError(f'persistentvolumeclaim "{claim["claimName"]}" is not bound')
            volumes[name] = Volume(
                name,
                path,
                "claim",
                read_only=claim.get("readOnly", False),
                manages_ownership=claim["claimName"] not in sources.fs_group_ignored,
            )
        elif "hostPath" in volume:
            host_path = volume["hostPath"]
            create = host_path.get("type", "") in ("", "DirectoryOrCreate")
            volumes[name] = Volume(
                name, host_path["path"], "host", create=create, manages_ownership=False
            )
        elif "emptyDir" in volume:
            volumes[name] = Volume(name, own, "empty")
        elif "secret" in volume:
            source = volume["secret"]
            data = referenced_data(sources.secrets, "secret", source, VolumeError, "secretName")
            mode = source.get("defaultMode", DEFAULT_FILE_MODE)
            files = _files(data, source, mode, f"secret {source['secretName']}")
            volumes[name] = Volume(name, own, "files", tuple(files), read_only=True)
        elif "configMap" in volume:
            source = volume["configMap"]
            data = referenced_data(sources.config_maps, "configmap", source, VolumeError)
            mode = source.get("defaultMode", DEFAULT_FILE_MODE)
            files = _files(data, source, mode, f"configmap {source['name']}")
            volumes[name] = Volume(name, own, "files", tuple(files), read_only=True)
        elif "downwardAPI" in volume:
            source = volume["downwardAPI"]
            mode = source.get("defaultMode", DEFAULT_FILE_MODE)
            files = _downward_files(pod, source.get("items") or [], mode, host)
            volumes[name] = Volume(name, own, "files", tuple(files), read_only=True)
        elif "projected" in volume:
            files = _projected_files(pod, volume, sources, host)
            volumes[name] = Volume(name, own, "files", tuple(files), read_only=True)
        else:
            kinds = sorted(set(volume) - {"name"})
            raise VolumeError(f"volume {name!r}: {kinds} is not supported by the sandbox")
    return volumes


def container_mounts(
    container: Json, volumes: Mapping[str, Volume], env: Mapping[str, str]
) -> list[Mount]:
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise ConfigError(f"volume {mount['name']!r} is not defined in the pod")
        sub = mount.get("subPath") or expand(mount.get("subPathExpr", ""), env.get)
        if sub and (sub.startswith("/") or ".." in sub.split("/")):
            raise ConfigError(f"subPath {sub!r} must be a relative path without '..'")
        source = f"{volume.path}/{sub}" if sub else volume.path
        read_only = bool(mount.get("readOnly")) or volume.read_only
        mounts.append(
            Mount(
                source, mount["mountPath"], read_only, create=bool(sub) and volume.kind != "files"
            )
        )
    return mounts


def image_mounts(image: str, host: Host) -> list[Mount]:
    if not is_operator_image(image):
        return []
    return [Mount(path, path, read_only=True) for path in host.image_paths]
