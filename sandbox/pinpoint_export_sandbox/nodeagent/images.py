"""What the sandbox knows of container images: which is the operator's, the user it runs as,
and the argv a container runs (the image's entrypoint combined with the spec's command, args).
"""

from __future__ import annotations

import posixpath

OPERATOR_REPOSITORY_SUFFIX = "pinpoint-export-operator"
OPERATOR_SCRIPT = "pinpoint-export-operator"
OPERATOR_MODULE = "pinpoint_export_operator"
NONROOT = 65532  # the operator image's user (distroless "nonroot")


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
