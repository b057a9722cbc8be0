"""Create an object with a deterministic name, or adopt the one an earlier attempt created.

Names are derived from the owner (a copy Job from its export, a scheduled run from its
schedule and time), so a restart between creating an object and recording it finds it again:
409 Conflict means "look", not "fail". What is found is adopted only if its controller is the
owner named in the manifest (`objects.controller_uid`); otherwise the name is taken.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kubernetes import client

from pinpoint_export_operator.runtime.kube_json import Json, KubeJson
from pinpoint_export_operator.runtime.objects import controller_uid


class Created(enum.Enum):
    CREATED = "created"
    ADOPTED = "adopted"  # ours already: created before a restart
    TAKEN = "taken"  # the name belongs to an object that the owner does not control


@dataclass(frozen=True)
class Result:
    outcome: Created
    object: Json  # the created or the existing object, as the API server returned it


def create_or_adopt(kube: KubeJson, collection: str, manifest: Json) -> Result:
    """POST `manifest` to `collection`; on 409, GET the existing object and judge it."""
    try:
        return Result(Created.CREATED, kube.create(collection, manifest))
    except client.ApiException as error:
        if error.status != 409:
            raise
    existing = kube.get(f"{collection}/{manifest['metadata']['name']}")
    ours = controller_uid(existing) == controller_uid(manifest)
    return Result(Created.ADOPTED if ours else Created.TAKEN, existing)
