"""Who a container runs as: uid, gid and groups from the pod's and the container's
securityContext over the image's user, refusing root under runAsNonRoot as the kubelet does.
"""

from __future__ import annotations

from .errors import ConfigError
from .images import NONROOT, ImageConfig, is_operator_image
from .podspec import Json


def _where(pod: Json, container: Json) -> str:
    metadata = pod["metadata"]
    return (
        f'(pod: "{metadata["name"]}_{metadata.get("namespace", "default")}'
        f'({metadata.get("uid", "")})", container: {container["name"]})'
    )


def identity(
    pod: Json, container: Json, image: ImageConfig | None = None
) -> tuple[int, int | None, tuple[int, ...]]:
    """(uid, gid, supplementary groups), refusing root under runAsNonRoot as the kubelet does.

    The image's USER comes from `image` (a local image run as a container), else from what the
    sandbox knows (the operator image runs as 65532, others as root). A gid of None means the
    user's primary group, which the runtime looks up in the image's /etc/passwd (runAsUser
    without runAsGroup). A USER that names a user, with no runAsUser over it, is refused: the
    sandbox cannot check runAsNonRoot, nor report the uid, without reading the image's files.
    """
    pod_context = pod["spec"].get("securityContext") or {}
    context = {**pod_context, **(container.get("securityContext") or {})}
    uid = context.get("runAsUser")
    gid = context.get("runAsGroup")
    if image is None:
        operator = is_operator_image(container.get("image", ""))
        image_user: tuple[int, int | None] | None = (NONROOT, NONROOT) if operator else (0, 0)
    else:
        image_user = image.numeric_user()
        if image_user is None and uid is None:
            if context.get("runAsNonRoot"):
                raise ConfigError(
                    f"container has runAsNonRoot and image has non-numeric user ({image.user}), "
                    f"cannot verify user is non-root {_where(pod, container)}"
                )
            raise ConfigError(
                f"image {image.name!r} runs as user {image.user!r}: the sandbox needs a numeric "
                "user, set runAsUser"
            )
    effective = uid if uid is not None else image_user[0] if image_user else None
    if context.get("runAsNonRoot") and effective == 0:
        if uid is None:
            raise ConfigError(
                f"container has runAsNonRoot and image will run as root {_where(pod, container)}"
            )
        raise ConfigError(f"container's runAsUser breaks non-root policy {_where(pod, container)}")
    if uid is None:
        assert image_user is not None
        uid, image_gid = image_user
        gid = image_gid if gid is None else gid
    groups: list[int] = []
    for group in [pod_context.get("fsGroup"), *(pod_context.get("supplementalGroups") or [])]:
        if group is not None and group not in groups:
            groups.append(int(group))
    return int(uid), None if gid is None else int(gid), tuple(groups)
