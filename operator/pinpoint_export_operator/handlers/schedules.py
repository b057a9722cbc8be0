"""PinpointExportSchedule: one daemon per schedule, asleep until its next time or an event.

A daemon rather than a timer: a timer fires at a fixed interval, so it either polls every
schedule often (API calls for nothing, most of the time) or starts runs up to an interval
late. The daemon sleeps exactly until the next scheduled time and is woken early by the events
below. Kopf puts a finalizer on objects that have a daemon (its only write to the schedule's
metadata, in a field that kubectl apply, server-side apply, Argo CD and Flux leave alone), and
stops the daemon on deletion; with peering, only the active replica runs daemons.

The operator writes only the schedule's status (Kopf's own records go to status.kopf, see
lifecycle.py) and its own PinpointExports; the trigger annotation's last handled value is
recorded in status.lastTriggerValue, never in metadata.
"""

from __future__ import annotations

from typing import Any

import kopf

from pinpoint_export_operator import api


@kopf.daemon(api.GROUP, api.VERSION, api.SCHEDULES, cancellation_timeout=5.0)
async def run_schedule(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    await memo.schedules.run(body, stopped, logger)


# Async handlers: the wakeups are asyncio.Events, set on the event loop only.
@kopf.on.event(api.GROUP, api.VERSION, api.SCHEDULES)
async def schedule_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.inventory.saw_schedule(type, body)
    # Only what the daemon has not acted on yet: its own status patches wake nothing.
    status = body.get("status") or {}
    trigger = body.metadata.annotations.get(api.ANNOTATION_TRIGGER)
    if body.metadata.get("generation") != status.get("observedGeneration") or (
        trigger is not None and trigger != status.get("lastTriggerValue")
    ):
        memo.schedules.wakeups.poke(body.metadata.uid)


@kopf.on.event(api.GROUP, api.VERSION, api.EXPORTS, labels={api.LABEL_SCHEDULE: kopf.PRESENT})
async def export_of_schedule_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    # A run that finished or went away frees a Forbid schedule, updates lastSuccessfulTime and
    # may exceed a history limit; progress within a run changes nothing for its schedule.
    if type == "DELETED" or (body.get("status") or {}).get("phase") in api.TERMINAL_PHASES:
        for owner in body.metadata.get("ownerReferences", []):
            if owner.get("controller"):
                memo.schedules.wakeups.poke(owner["uid"])
