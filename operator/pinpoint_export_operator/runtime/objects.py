"""Kubernetes objects as plain data: copies of Kopf's bodies, and who controls an object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """A deep plain-dict copy of Kopf's read-only body views."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# Where Kopf keeps its own records (see handlers.lifecycle): in the status, beside ours.
KOPF_STATUS_KEY = "kopf"


def own_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of the object's status without Kopf's records, which the operator's
    decisions never read, compare or write."""
    status = obj.get("status") or {}
    return {k: plain(v) for k, v in status.items() if k != KOPF_STATUS_KEY}


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (the owner reference with `controller: true`).

    The one ownership rule of the operator: an object is ours to adopt, list or delete only if
    we are its controller; a label or a plain owner reference is no proof."""
    for owner in obj.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("uid"))
    return None


def controller_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """The owner reference that makes `uid` the controller: garbage collection follows it."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
