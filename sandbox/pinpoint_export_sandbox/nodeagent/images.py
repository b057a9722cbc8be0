"""What the sandbox knows of container images: which is the operator's, the user it runs as,
and the argv a container runs (the image's entrypoint combined with the spec's command, args).

Two sources: `ImageConfig`, an image's own configuration as the container engine stores it
(for images built locally, which run as containers), and, for pods run as processes, the
sandbox's knowledge of the operator image (its console script and user).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class ImageConfig:
    """A local image's configuration (the OCI image config's `config`), as a runtime reads it."""

    name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""  # USER: "", "65532", "65532:65532", or a name
    working_dir: str = ""

    @classmethod
    def from_inspect(cls, name: str, config: dict[str, Any]) -> ImageConfig:
        """From `podman image inspect`'s `.Config`."""
        return cls(
            name=name,
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            user=config.get("User") or "",
            working_dir=config.get("WorkingDir") or "",
        )

    def numeric_user(self) -> tuple[int, int | None] | None:
        """(uid, gid or None for the user's primary group) of USER; None if it names a user."""
        user, _, group = self.user.partition(":")
        if not user:
            return 0, None
        if not user.isdigit() or (group and not group.isdigit()):
            return None
        return int(user), int(group) if group else None


def image_argv(image: ImageConfig, command: Sequence[str], args: Sequence[str]) -> tuple[str, ...]:
    """What a container runtime runs (the kubelet's rule): `command` replaces the image's
    ENTRYPOINT and drops its CMD; `args` replaces CMD. Raises ValueError if that is nothing."""
    argv = (*(command or image.entrypoint), *(args or (() if command else image.cmd)))
    if not argv:
        raise ValueError(
            f"no command specified: image {image.name!r} has neither ENTRYPOINT nor CMD"
        )
    return argv
