"""Pod spec -> launch plan: what each container runs, with which environment, identity and mounts.

Pure: whatever comes from the API (Secrets, ConfigMaps, the host directories of bound PVs,
service-account tokens) is passed in as `Sources`, so these rules are unit-tested without a
cluster. The rules follow the kubelet's where the sandbox can honour them.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from kubernetes.utils.quantity import parse_quantity

Json = dict[str, Any]

OPERATOR_REPOSITORY_SUFFIX = "pinpoint-export-operator"
OPERATOR_SCRIPT = "pinpoint-export-operator"
OPERATOR_MODULE = "pinpoint_export_operator"
NONROOT = 65532  # the operator image's user (distroless "nonroot")
POD_IP = "127.0.0.1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_FILE_MODE = 0o644
# What the node reports as allocatable; also what resourceFieldRef reads for unset limits.
# `pods` is the kubelet's default maxPods, and the binder honours it as the scheduler would:
# every running container is a real process here, so a burst of pods must queue, not swap.
MAX_PODS = 110
ALLOCATABLE = {"cpu": "16", "memory": "64Gi", "pods": str(MAX_PODS), "ephemeral-storage": "100Gi"}


class ConfigError(Exception):
    """The container cannot be configured (yet): kubelet's CreateContainerConfigError."""


class VolumeError(Exception):
    """A volume cannot be set up (yet): the pod waits in ContainerCreating."""


@dataclass(frozen=True)
class TokenRef:
    """A projected service-account token to request for the pod."""

    audience: str | None
    expiration_seconds: int


@dataclass(frozen=True)
class Host:
    """Facts about the node the plan depends on."""

    node_name: str
    api_host: str
    api_port: int
    python: str  # the interpreter the operator image's entrypoint maps to
    # Where the operator image's files live on the host (the virtual environment, the
    # package): mounted read-only at the same paths, over any pod volume that would hide them.
    image_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sources:
    """API objects the pod refers to, fetched by the caller. Absent means not found."""

    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    config_maps: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    claims: Mapping[str, str] = field(default_factory=dict)  # claim name -> host directory
    tokens: Mapping[TokenRef, str] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    secrets: frozenset[str]
    config_maps: frozenset[str]
    claims: frozenset[str]
    tokens: frozenset[TokenRef]


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


@dataclass(frozen=True)
class Mount:
    source: str  # on the host
    target: str  # in the container
    read_only: bool = False
    create: bool = False  # a subPath: created as a directory if missing, like the kubelet


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    mounts: tuple[Mount, ...]
    hostname: str
    read_only_root: bool = False
    no_new_privileges: bool = False
    termination_message_path: str = DEFAULT_TERMINATION_MESSAGE_PATH
    fallback_to_logs: bool = False  # terminationMessagePolicy FallbackToLogsOnError
    start_error: str | None = None  # known before starting: nothing to run
    nice: int = 0  # the CPU weight its request buys, see cpu_nice


# The kernel's CFS weight of nice 0 to 19 (kernel/sched/core.c).
NICE_WEIGHTS: tuple[int, ...] = (1024, 820, 655, 526, 423, 335, 272, 215, 172, 137)
NICE_WEIGHTS += (110, 87, 70, 56, 45, 36, 29, 23, 18, 15)


def cpu_nice(container: Json) -> int:
    """The nice value whose CPU weight is closest to the cgroup weight a kubelet gives the
    container, cpu.shares = 1024 x requested CPUs (2 with no request), against the 1024 of a
    process outside the pods, as the control plane and the operator run here. Never below 0:
    on this one machine no pod outranks the control plane."""
    request = ((container.get("resources") or {}).get("requests") or {}).get("cpu")
    shares = max(2.0, 1024 * float(parse_quantity(request))) if request else 2.0  # type: ignore[no-untyped-call]
    return min(range(20), key=lambda nice: abs(NICE_WEIGHTS[nice] - shares))


# --- images ---------------------------------------------------------------------------------


def image_repository(image: str) -> str:
    """`ghcr.io/x/name:tag@sha256:...` -> `ghcr.io/x/name`."""
    name = image.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    return name


def is_operator_image(image: str) -> bool:
    return image_repository(image).endswith(OPERATOR_REPOSITORY_SUFFIX)


def entrypoint(image: str, command: list[str], args: list[str], python: str) -> tuple[str, ...]:
    """The argv a container runs, as a container runtime combines ENTRYPOINT/CMD with the spec.

    The operator image's entrypoint is its console script, mapped to the installed package.
    Other images are assumed to have no ENTRYPOINT (busybox, alpine, python...), so `args`
    alone is the argv; with neither there is nothing the sandbox knows how to run.
    """
    module = (python, "-m", OPERATOR_MODULE)
    if is_operator_image(image):
        if not command:
            return (*module, *args)
        if posixpath.basename(command[0]) == OPERATOR_SCRIPT:
            return (*module, *command[1:], *args)
    argv = (*command, *args)
    if not argv:
        raise ValueError(
            f"image {image!r} has no entrypoint the sandbox knows: set the container's command"
        )
    return argv


# --- $(VAR) expansion -----------------------------------------------------------------------


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion: `$$` escapes, unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char != "$" or i + 1 == len(value):
            out.append(char)
            i += 1
            continue
        following = value[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = value.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
                continue
            name = value[i + 2 : close]
            found = lookup(name)
            out.append(f"$({name})" if found is None else found)
            i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


# --- references -----------------------------------------------------------------------------


def _spec_containers(pod: Json) -> list[Json]:
    spec = pod["spec"]
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _projected_sources(volume: Json) -> list[Json]:
    return list((volume.get("projected") or {}).get("sources") or [])


def references(pod: Json) -> References:
    """The API objects a pod's containers and volumes refer to."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    claims: set[str] = set()
    tokens: set[TokenRef] = set()
    for container in _spec_containers(pod):
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
        for source in _projected_sources(volume):
            if "secret" in source:
                secrets.add(source["secret"]["name"])
            if "configMap" in source:
                config_maps.add(source["configMap"]["name"])
            if "serviceAccountToken" in source:
                tokens.add(_token_ref(source["serviceAccountToken"]))
    return References(
        frozenset(secrets), frozenset(config_maps), frozenset(claims), frozenset(tokens)
    )


def _token_ref(projection: Json) -> TokenRef:
    return TokenRef(projection.get("audience") or None, projection.get("expirationSeconds", 3600))


# --- the downward API -----------------------------------------------------------------------


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
    container = next((c for c in _spec_containers(pod) if c["name"] == container_name), None)
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


# --- environment ----------------------------------------------------------------------------


def service_env(host: Host) -> dict[str, str]:
    """The `kubernetes` service's variables, pointing at the real API server (no kube-proxy)."""
    return {
        "KUBERNETES_SERVICE_HOST": host.api_host,
        "KUBERNETES_SERVICE_PORT": str(host.api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(host.api_port),
        "KUBERNETES_PORT": f"tcp://{host.api_host}:{host.api_port}",
    }


def _find(
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


def _text(data: bytes) -> str:
    # The kubelet passes bytes through; surrogateescape round-trips them to the exec'd process.
    return data.decode("utf-8", "surrogateescape")


def container_env(pod: Json, container: Json, sources: Sources, host: Host) -> dict[str, str]:
    """The container's environment: envFrom, then env in order (each value may refer to the
    variables before it and the service variables), then the service variables not set."""
    namespace = pod["metadata"].get("namespace", "default")
    service = service_env(host)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            data = _find(sources.config_maps, "configmap", source["configMapRef"])
        else:
            data = _find(sources.secrets, "secret", source["secretRef"])
        for key, raw in (data or {}).items():
            name = source.get("prefix", "") + key
            if name and "=" not in name:  # the kubelet skips keys that are not variable names
                env[name] = _text(raw)
    for var in container.get("env") or []:
        value_from = var.get("valueFrom")
        if value_from is None:
            env[var["name"]] = expand(var.get("value", ""), lambda n: env.get(n, service.get(n)))
            continue
        value = _value_from(pod, container, value_from, sources, host, namespace)
        if value is not None:
            env[var["name"]] = value
    return {**service, **env}


def _value_from(
    pod: Json, container: Json, value_from: Json, sources: Sources, host: Host, namespace: str
) -> str | None:
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"], host.node_name)
    if "resourceFieldRef" in value_from:
        ref = value_from["resourceFieldRef"]
        name = ref.get("containerName") or container["name"]
        return resource_value(pod, name, ref["resource"], ref.get("divisor"))
    for key, kind, objects in (
        ("secretKeyRef", "Secret", sources.secrets),
        ("configMapKeyRef", "ConfigMap", sources.config_maps),
    ):
        if key in value_from:
            ref = value_from[key]
            data = _find(objects, kind.lower(), ref)
            if data is None:
                return None
            if ref["key"] not in data:
                if ref.get("optional", False):
                    return None
                raise ConfigError(
                    f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}"
                )
            return _text(data[ref["key"]])
    raise ConfigError(f"unsupported valueFrom {sorted(value_from)}")


# --- identity -------------------------------------------------------------------------------


def identity(pod: Json, container: Json) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, supplementary groups), refusing root under runAsNonRoot as the kubelet does."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    operator = is_operator_image(container.get("image", ""))
    image_user = NONROOT if operator else 0  # the image's USER
    uid = context.get("runAsUser")
    gid = context.get("runAsGroup")
    if context.get("runAsNonRoot") and (uid if uid is not None else image_user) == 0:
        where = (
            f'(pod: "{pod["metadata"]["name"]}_{pod["metadata"].get("namespace", "default")}'
            f'({pod["metadata"].get("uid", "")})", container: {container["name"]})'
        )
        if uid is None:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
    if uid is None:
        uid = image_user
        gid = image_user if gid is None else gid
    groups: list[int] = []
    for group in [pod_context.get("fsGroup"), *(pod_context.get("supplementalGroups") or [])]:
        if group is not None and group not in groups:
            groups.append(int(group))
    return int(uid), int(gid or 0), tuple(groups)


# --- volumes --------------------------------------------------------------------------------


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
    for source in _projected_sources(volume):
        if "secret" in source:
            data = _find(sources.secrets, "secret", source["secret"], VolumeError)
            files += _files(data, source["secret"], mode, f"secret {source['secret']['name']}")
        elif "configMap" in source:
            data = _find(sources.config_maps, "configmap", source["configMap"], VolumeError)
            files += _files(
                data, source["configMap"], mode, f"configmap {source['configMap']['name']}"
            )
        elif "downwardAPI" in source:
            files += _downward_files(pod, source["downwardAPI"].get("items") or [], mode, host)
        elif "serviceAccountToken" in source:
            projection = source["serviceAccountToken"]
            token = sources.tokens.get(_token_ref(projection))
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
            volumes[name] = Volume(name, path, "claim", read_only=claim.get("readOnly", False))
        elif "hostPath" in volume:
            host_path = volume["hostPath"]
            create = host_path.get("type", "") in ("", "DirectoryOrCreate")
            volumes[name] = Volume(name, host_path["path"], "host", create=create)
        elif "emptyDir" in volume:
            volumes[name] = Volume(name, own, "empty")
        elif "secret" in volume:
            source = volume["secret"]
            data = _find(sources.secrets, "secret", source, VolumeError, "secretName")
            mode = source.get("defaultMode", DEFAULT_FILE_MODE)
            files = _files(data, source, mode, f"secret {source['secretName']}")
            volumes[name] = Volume(name, own, "files", tuple(files), read_only=True)
        elif "configMap" in volume:
            source = volume["configMap"]
            data = _find(sources.config_maps, "configmap", source, VolumeError)
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


def _mounts(container: Json, volumes: Mapping[str, Volume], env: Mapping[str, str]) -> list[Mount]:
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


def _image_mounts(image: str, host: Host) -> list[Mount]:
    if not is_operator_image(image):
        return []
    return [Mount(path, path, read_only=True) for path in host.image_paths]


# --- containers -----------------------------------------------------------------------------


def plan_container(
    pod: Json,
    container: Json,
    volumes: Mapping[str, Volume],
    sources: Sources,
    host: Host,
    pod_dir: str,
) -> ContainerPlan:
    """How to run `container` of `pod`; raises ConfigError when it cannot be configured."""
    env = container_env(pod, container, sources, host)
    uid, gid, groups = identity(pod, container)
    image = container.get("image", "")
    command = [expand(a, env.get) for a in container.get("command") or []]
    args = [expand(a, env.get) for a in container.get("args") or []]
    start_error = None
    try:
        argv = entrypoint(image, command, args, host.python)
    except ValueError as error:
        argv, start_error = (), str(error)
    # What the image would set: PATH (with the interpreter's bin first, as in the operator
    # image), HOME of its user, and HOSTNAME as a container runtime does.
    image_env = {
        "PATH": f"{posixpath.dirname(host.python)}:{SYSTEM_PATH}",
        "HOME": "/root" if uid == 0 else "/",
        "HOSTNAME": pod["metadata"]["name"],
    }
    termination_path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    termination_log = Mount(
        f"{container_dir(pod_dir, container['name'])}/termination-log", termination_path
    )
    context = container.get("securityContext") or {}
    return ContainerPlan(
        name=container["name"],
        image=image,
        argv=argv,
        env={**image_env, **env},
        working_dir=container.get("workingDir") or "/",
        uid=uid,
        gid=gid,
        groups=groups,
        mounts=(*_mounts(container, volumes, env), termination_log, *_image_mounts(image, host)),
        hostname=pod["spec"].get("hostname") or pod["metadata"]["name"],
        read_only_root=bool(context.get("readOnlyRootFilesystem")),
        no_new_privileges=context.get("allowPrivilegeEscalation") is False,
        termination_message_path=termination_path,
        fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        start_error=start_error,
        nice=cpu_nice(container),
    )
