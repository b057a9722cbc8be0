"""The shape of a PinpointExportSchedule's status (crds/pinpointexportschedules.yaml).

Kopf keeps its own records under `status.kopf`; the reconciler leaves them out of what it
reads and writes, so they are not part of this shape.
"""

from __future__ import annotations

from typing import TypedDict

from pinpoint_export_operator.runtime.conditions import Condition


class ScheduleStatus(TypedDict, total=False):
    lastScheduleTime: str
    lastMissedTime: str
    lastSuccessfulTime: str
    lastFailedTime: str
    lastFailure: str  # "<export>: <its message>", of the run that failed last
    nextScheduleTime: str
    active: int
    activeExports: list[str]
    lastTriggerValue: str
    observedGeneration: int | None
    conditions: list[Condition]
