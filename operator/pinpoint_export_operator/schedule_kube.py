"""The Kubernetes adapter of the schedules: their exports and their status.

Blocking (the official client's transport); the schedule reconciler runs these in threads.
"""

from __future__ import annotations

import enum
from typing import Any

from kubernetes import client

from pinpoint_export_operator import api
from pinpoint_export_operator.kube_json import KubeJson, namespaced


class Created(enum.Enum):
    CREATED = "created"
    EXISTS = "exists"  # ours already: created before a restart
    TAKEN = "taken"  # the name belongs to an object this schedule does not control


class ScheduleKube:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._kube = KubeJson(api_client)

    def list_exports(self, namespace: str, schedule: str, uid: str) -> list[dict[str, Any]]:
        """The PinpointExports this schedule controls (label, then owner: a label is no proof)."""
        listed = self._kube.get(
            _exports(namespace), {"labelSelector": f"{api.LABEL_SCHEDULE}={schedule}"}
        )
        items: list[dict[str, Any]] = listed["items"]
        return [obj for obj in items if _controller_uid(obj) == uid]

    def create_export(self, manifest: dict[str, Any]) -> Created:
        meta = manifest["metadata"]
        try:
            self._kube.create(_exports(meta["namespace"]), manifest)
        except client.ApiException as error:
            if error.status != 409:
                raise
            existing = self._kube.get(_exports(meta["namespace"], meta["name"]))
            owner = meta["ownerReferences"][0]["uid"]
            ours = _controller_uid(existing) == owner
            return Created.EXISTS if ours else Created.TAKEN
        return Created.CREATED

    def delete_export(self, namespace: str, name: str) -> None:
        """Delete one export; its copy Job follows by garbage collection, its files stay."""
        try:
            self._kube.delete(_exports(namespace, name), {"propagationPolicy": "Background"})
        except client.ApiException as error:
            if error.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """A JSON merge patch of the status subresource: None values remove fields."""
        self._kube.patch_status(namespaced(api.API_VERSION, namespace, api.SCHEDULES, name), status)


def _exports(namespace: str, name: str = "") -> str:
    return namespaced(api.API_VERSION, namespace, api.EXPORTS, name)


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for owner in obj.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("uid"))
    return None
