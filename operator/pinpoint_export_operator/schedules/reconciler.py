"""The loop of one PinpointExportSchedule: observe, decide, act, record, sleep until due.

Decisions come from `schedule_state`; this module lists the schedule's exports, creates and
deletes them through `schedule_kube`, patches the status when (and only when) it changed,
posts the Events, and sleeps until the next scheduled time or until an event wakes it: the
spec or the trigger annotation changed, or one of its exports finished or went away.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import kopf
import urllib3
from kubernetes import client

from pinpoint_export_operator.runtime import metrics, timestamps
from pinpoint_export_operator.runtime.adopt import Created
from pinpoint_export_operator.runtime.backoff import backoff
from pinpoint_export_operator.runtime.errors import kubernetes_error
from pinpoint_export_operator.runtime.events import Event, PostedOnce
from pinpoint_export_operator.runtime.objects import own_status, plain
from pinpoint_export_operator.runtime.wakeups import Stopped, Wakeups, wait_for_wakeup
from pinpoint_export_operator.schedules import state as schedule_state
from pinpoint_export_operator.schedules.kube import ScheduleKube
from pinpoint_export_operator.schedules.state import Child, Decision, Schedule, Status

# Wake a little after the scheduled second: the decision needs now >= the scheduled time, and
# asyncio's monotonic clock and the wall clock may disagree by a few milliseconds.
PADDING = 0.1
# Look again at least this often even with nothing due: a wall clock stepped by NTP, or an
# event lost with a broken watch, is noticed within this time.
MAX_SLEEP = 600.0


class ScheduleReconciler:
    def __init__(self, kube: ScheduleKube, wakeups: Wakeups) -> None:
        self._kube = kube
        self.wakeups = wakeups

    async def run(self, body: kopf.Body, stopped: Stopped, logger: Any) -> None:
        uid = body["metadata"]["uid"]
        wakeup = self.wakeups.register(uid)
        posted = PostedOnce()
        attempt = 0
        # The status as this daemon, its only writer, last wrote it. Kopf's body shows a write
        # only once the write's event arrives: a decision on the older status would write it
        # again (with new condition times) or start a run again.
        written = cast(Status, own_status(body))
        try:
            while not stopped:
                wakeup.clear()  # events from here on wake the wait below
                try:
                    wake_at, written = await self._reconcile(body, written, posted, logger)
                except Exception as error:
                    delay = backoff(attempt)
                    attempt += 1
                    logger.warning(f"retrying in {delay:.1f}s: {error}")
                    written = await self._report(body, written, error, logger)
                else:
                    attempt = 0
                    delay = MAX_SLEEP
                    if wake_at is not None:
                        due = (wake_at - datetime.now(UTC)).total_seconds() + PADDING
                        delay = min(MAX_SLEEP, max(PADDING, due))
                await wait_for_wakeup(delay, wakeup, stopped)
        finally:
            self.wakeups.forget(uid)

    async def _reconcile(
        self, body: kopf.Body, written: Status, posted: PostedOnce, logger: Any
    ) -> tuple[datetime | None, Status]:
        """One pass; returns when to wake and the status as now written."""
        schedule = Schedule.from_object(plain(body))
        listed = await asyncio.to_thread(
            self._kube.list_exports, schedule.namespace, schedule.name, schedule.uid
        )
        children = [Child.from_object(o) for o in listed]
        decision = schedule_state.decide(schedule, written, children, datetime.now(UTC))
        await self._act(body, schedule, decision, posted, logger)
        if decision.status != written:
            await asyncio.to_thread(
                self._kube.patch_status,
                schedule.namespace,
                schedule.name,
                _merge_patch(written, decision.status),
            )
        metrics.SCHEDULE_MISSED.labels(schedule.namespace).inc(decision.missed)
        for event in decision.events:
            posted.post(body, event)
        return decision.wake_at, decision.status

    async def _act(
        self,
        body: kopf.Body,
        schedule: Schedule,
        decision: Decision,
        posted: PostedOnce,
        logger: Any,
    ) -> None:
        for gone in decision.delete:
            try:
                await asyncio.to_thread(self._kube.delete_export, schedule.namespace, gone.name)
            except client.ApiException as error:
                posted.post(body, _failed("FailedDelete", error, f"delete {gone.name}"))
                raise
            message = f"Deleted PinpointExport {gone.name} ({gone.why}); its files stay"
            logger.info(message)
            posted.post(body, Event("Normal", "SuccessfulDelete", message))
        for run in decision.start:
            manifest = schedule_state.export_manifest(schedule, run)
            try:
                created = await asyncio.to_thread(self._kube.create_export, manifest)
            except client.ApiException as error:
                posted.post(body, _failed("FailedCreate", error, f"create {run.name}"))
                raise
            why = (
                f"the run of {timestamps.format(run.scheduled_at)}"
                if run.scheduled_at is not None
                else f"trigger {run.trigger!r}"
            )
            if created is Created.CREATED:
                message = f"Created PinpointExport {run.name} for {why}"
                logger.info(message)
                posted.post(body, Event("Normal", "SuccessfulCreate", message))
            elif created is Created.TAKEN:
                message = (
                    f"PinpointExport {run.name} exists and is not this schedule's: "
                    f"skipped {why}; rename or delete that export"
                )
                posted.post(body, Event("Warning", "ExportNameTaken", message))

    async def _report(
        self, body: kopf.Body, written: Status, error: Exception, logger: Any
    ) -> Status:
        """Best effort: show the retried error as Reconciling=True on the status; returns the
        status as now written."""
        obj = plain(body)
        if isinstance(error, client.ApiException | urllib3.exceptions.HTTPError):
            cloud_error = kubernetes_error(error, "PinpointExportSchedule")
            reason, message = cloud_error.reason, cloud_error.message
        else:
            reason, message = "ReconcileError", f"{type(error).__name__}: {error}"
        status = schedule_state.retrying(
            written,
            reason,
            f"Retrying: {message}",
            datetime.now(UTC),
            obj["metadata"].get("generation"),
        )
        try:
            await asyncio.to_thread(
                self._kube.patch_status,
                obj["metadata"]["namespace"],
                obj["metadata"]["name"],
                _merge_patch(written, status),
            )
        except Exception as patch_error:
            logger.warning(f"could not record the error on the status: {patch_error}")
            return written
        return status


def _merge_patch(old: Status, new: Status) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new` (top-level keys; None removes one)."""
    return {**{key: None for key in old if key not in new}, **new}


def _failed(reason: str, error: client.ApiException, operation: str) -> Event:
    return Event("Warning", reason, kubernetes_error(error, operation).message)
