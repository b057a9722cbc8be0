"""Who a container runs as: uid, gid and groups from the pod's and the container's
securityContext over the image's user, refusing root under runAsNonRoot as the kubelet does.
"""

from __future__ import annotations

from .errors import ConfigError
from .images import NONROOT, is_operator_image
from .podspec import Json


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
