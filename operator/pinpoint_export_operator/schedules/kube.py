"""The Kubernetes adapter of the schedules: their exports and their status.

Blocking (the official client's transport); the schedule reconciler runs these in threads.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.runtime.adopt import Created, create_or_adopt
from pinpoint_export_operator.runtime.kube_json import KubeJson, namespaced
from pinpoint_export_operator.runtime.objects import controller_uid


class ScheduleKube:
    def __init__(self, kube: KubeJson) -> None:
        self._kube = kube

    def list_exports(self, namespace: str, schedule: str, uid: str) -> list[dict[str, Any]]:
        """The PinpointExports this schedule controls (label, then owner: a label is no proof)."""
        listed = self._kube.get(
            _exports(namespace), {"labelSelector": f"{api.LABEL_SCHEDULE}={schedule}"}
        )
        items: list[dict[str, Any]] = listed["items"]
        return [obj for obj in items if controller_uid(obj) == uid]

    def create_export(self, manifest: dict[str, Any]) -> Created:
        return create_or_adopt(
            self._kube, _exports(manifest["metadata"]["namespace"]), manifest
        ).outcome

    def delete_export(self, namespace: str, name: str) -> None:
        """Delete one export; its copy Job follows by garbage collection, its files stay."""
        try:
            self._kube.delete(_exports(namespace, name), {"propagationPolicy": "Background"})
        except client.ApiException as error:
            if error.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of the status subresource: None values remove fields."""
        self._kube.patch_status(namespaced(api.API_VERSION, namespace, api.SCHEDULES, name), patch)


def _exports(namespace: str, name: str = "") -> str:
    return namespaced(api.API_VERSION, namespace, api.EXPORTS, name)
