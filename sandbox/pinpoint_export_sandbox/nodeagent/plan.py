"""Pod spec -> launch plan: what each container runs, with which environment, identity and mounts.

Pure: whatever comes from the API (Secrets, ConfigMaps, the host directories of bound PVs,
service-account tokens) is passed in as `Sources`, so these rules are unit-tested without a
cluster. The rules follow the kubelet's where the sandbox can honour them. `plan_container`
puts together the container's argv (`images`), environment (`env`), identity (`identity`)
and mounts (`volumes`) with its own settings: termination message, root filesystem,
privilege escalation, capabilities, seccomp, CPU weight and memory limit.

With an `ImageConfig` (the image is built locally) the plan is for an OCI container: the
image's ENTRYPOINT, CMD, USER and WORKDIR count, and its environment is the runtime's to add.
Without one it is for a host process, and the sandbox stands in for the image (`images`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes.utils.quantity import parse_quantity

from .env import container_env, expand
from .errors import ConfigError
from .identity import identity
from .images import ImageConfig, entrypoint, image_argv
from .node import Host
from .podspec import Json, Sources
from .volumes import Mount, Volume, container_dir, container_mounts, image_mounts

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str
    uid: int
    gid: int | None  # None: the user's primary group in the image (runAsUser alone)
    groups: tuple[int, ...]
    mounts: tuple[Mount, ...]
    hostname: str
    read_only_root: bool = False
    no_new_privileges: bool = False
    termination_message_path: str = DEFAULT_TERMINATION_MESSAGE_PATH
    fallback_to_logs: bool = False  # terminationMessagePolicy FallbackToLogsOnError
    start_error: str | None = None  # known before starting: nothing to run
    cpu_shares: int = 2  # the cgroup weight the CPU request buys (the kubelet's minimum: 2)
    cpu_limit: float | None = None  # CPUs, from limits.cpu (CFS quota)
    nice: int = 0  # a process's CPU weight where it gets no CPU group, see cpu_nice
    # For a container (image_config set); a process has none of these.
    image_config: ImageConfig | None = None
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    privileged: bool = False
    seccomp: str = "Unconfined"  # the kubelet's default; or RuntimeDefault
    memory_limit: int | None = None  # bytes, from limits.memory


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


def _quantity(value: object) -> float:
    return float(parse_quantity(value))  # type: ignore[no-untyped-call]


def cpu_shares(container: Json) -> int:
    """The kubelet's cpu.shares: 1024 per requested CPU, at least 2."""
    request = ((container.get("resources") or {}).get("requests") or {}).get("cpu")
    return max(2, int(_quantity(request) * 1024)) if request else 2


def _limits(container: Json) -> tuple[float | None, int | None]:
    """(CPUs, memory bytes) of the container's limits."""
    limits = (container.get("resources") or {}).get("limits") or {}
    cpu = _quantity(limits["cpu"]) if "cpu" in limits else None
    memory = int(_quantity(limits["memory"])) if "memory" in limits else None
    return cpu, memory


def seccomp(pod: Json, container: Json) -> str:
    """The container's seccomp profile type (the container's over the pod's; Unconfined when
    neither sets one, as the kubelet without SeccompDefault). Localhost is not supported."""
    profile = (container.get("securityContext") or {}).get("seccompProfile") or (
        (pod["spec"].get("securityContext") or {}).get("seccompProfile") or {}
    )
    kind = str(profile.get("type") or "Unconfined")
    if kind not in ("Unconfined", "RuntimeDefault"):
        raise ConfigError(f"seccomp profile {kind} is not supported by the sandbox")
    return kind


def plan_container(
    pod: Json,
    container: Json,
    volumes: Mapping[str, Volume],
    sources: Sources,
    host: Host,
    pod_dir: str,
    image_config: ImageConfig | None = None,
) -> ContainerPlan:
    """How to run `container` of `pod`, as a container of the locally built image described
    by `image_config`, else as a process; raises ConfigError when it cannot be configured."""
    env = container_env(pod, container, sources, host)
    uid, gid, groups = identity(pod, container, image_config)
    image = container.get("image", "")
    command = [expand(a, env.get) for a in container.get("command") or []]
    args = [expand(a, env.get) for a in container.get("args") or []]
    start_error = None
    try:
        if image_config is not None:
            argv = image_argv(image_config, command, args)
        else:
            argv = entrypoint(image, command, args, host.python)
    except ValueError as error:
        argv, start_error = (), str(error)
    context = container.get("securityContext") or {}
    capabilities = context.get("capabilities") or {}
    termination_path = container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    termination_log = Mount(
        f"{container_dir(pod_dir, container['name'])}/termination-log", termination_path
    )
    cpu_limit, memory_limit = _limits(container)
    common = {
        "name": container["name"],
        "image": image,
        "argv": argv,
        "uid": uid,
        "groups": groups,
        "hostname": pod["spec"].get("hostname") or pod["metadata"]["name"],
        "read_only_root": bool(context.get("readOnlyRootFilesystem")),
        "no_new_privileges": context.get("allowPrivilegeEscalation") is False,
        "termination_message_path": termination_path,
        "fallback_to_logs": container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        "start_error": start_error,
        "cpu_shares": cpu_shares(container),
        "cpu_limit": cpu_limit,
    }
    if image_config is not None:
        # The image's environment (PATH, HOME...) and HOSTNAME are the runtime's to add.
        return ContainerPlan(
            **common,
            env=env,
            working_dir=container.get("workingDir") or image_config.working_dir or "/",
            gid=gid,
            mounts=(*container_mounts(container, volumes, env), termination_log),
            image_config=image_config,
            capabilities_add=tuple(capabilities.get("add") or ()),
            capabilities_drop=tuple(capabilities.get("drop") or ()),
            privileged=bool(context.get("privileged")),
            seccomp=seccomp(pod, container),
            memory_limit=memory_limit,
        )
    # What the image would set: PATH (with the interpreter's bin first, as in the operator
    # image), HOME of its user, and HOSTNAME as a container runtime does.
    image_env = {
        "PATH": f"{posixpath.dirname(host.python)}:{SYSTEM_PATH}",
        "HOME": "/root" if uid == 0 else "/",
        "HOSTNAME": pod["metadata"]["name"],
    }
    return ContainerPlan(
        **common,
        env={**image_env, **env},
        working_dir=container.get("workingDir") or "/",
        gid=gid if gid is not None else 0,  # the launcher looks up no /etc/passwd
        mounts=(
            *container_mounts(container, volumes, env),
            termination_log,
            *image_mounts(image, host),
        ),
        nice=cpu_nice(container),
    )
