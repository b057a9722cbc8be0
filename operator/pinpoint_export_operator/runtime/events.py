"""Kubernetes Events: the story `kubectl describe` tells, one Event per transition.

Decisions return `Event` values; the reconcilers post them through Kopf, which names the
operator as the source and the object as the subject.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import kopf


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def post(body: Any, event: Event) -> None:
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


class PostedOnce:
    """Posts each (reason, message) once per daemon: a schedule's decision repeats its
    warnings on every pass, and an Event per pass would bury the ones that matter."""

    def __init__(self, remembered: int = 64) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._remembered = remembered

    def post(self, body: Any, event: Event) -> None:
        key = (event.reason, event.message)
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > self._remembered:
            self._seen.popitem(last=False)
        post(body, event)
