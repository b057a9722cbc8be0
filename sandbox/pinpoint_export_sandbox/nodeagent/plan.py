"""Pod spec -> launch plan: what each container runs, with which environment, identity and mounts.

Pure: whatever comes from the API (Secrets, ConfigMaps, the host directories of bound PVs,
service-account tokens) is passed in as `Sources`, so these rules are unit-tested without a
cluster. The rules follow the kubelet's where the sandbox can honour them. `plan_container`
puts together the container's argv (`images`), environment (`env`), identity (`identity`)
and mounts (`volumes`) with its own settings: termination message, root filesystem,
privilege escalation and CPU weight.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from kubernetes.utils.quantity import parse_quantity

from .env import container_env, expand
from .identity import identity
from .images import entrypoint
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
        mounts=(
            *container_mounts(container, volumes, env),
            termination_log,
            *image_mounts(image, host),
        ),
        hostname=pod["spec"].get("hostname") or pod["metadata"]["name"],
        read_only_root=bool(context.get("readOnlyRootFilesystem")),
        no_new_privileges=context.get("allowPrivilegeEscalation") is False,
        termination_message_path=termination_path,
        fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
        start_error=start_error,
        nice=cpu_nice(container),
    )
