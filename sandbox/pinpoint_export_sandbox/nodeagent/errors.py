"""Why a pod cannot be planned or set up yet, as the kubelet reports it; the pod worker retries.

Raised by the planners and by the runtime that creates volumes on disk.
"""

from __future__ import annotations


class ConfigError(Exception):
    """The container cannot be configured (yet): kubelet's CreateContainerConfigError."""


class VolumeError(Exception):
    """A volume cannot be set up (yet): the pod waits in ContainerCreating."""
