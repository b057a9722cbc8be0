"""The loop of one PinpointExportSchedule: observe, decide, act, record, sleep until due.

Decisions come from `schedule_state`; this module lists the schedule's exports, creates and
deletes them through `schedule_kube`, patches the status when (and only when) it changed,
posts the Events, and sleeps until the next scheduled time or until an event wakes it: the
spec or the trigger annotation changed, or one of its exports finished or went away.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client

from pinpoint_export_operator import schedule_state
from pinpoint_export_operator.export_state import Event
from pinpoint_export_operator.reconciler import Stopped, Wakeups, backoff, plain, wait_for_wakeup
from pinpoint_export_operator.schedule_kube import Created, ScheduleKube
from pinpoint_export_operator.schedule_state import Child, Decision, Schedule, Status

# Wake a little after the scheduled second: the decision needs now >= the scheduled time, and
# asyncio's monotonic clock and the wall clock may disagree by a few milliseconds.
PADDING = 0.1
# Look again at least this often even with nothing due: a wall clock stepped by NTP, or an
# event lost with a broken watch, is noticed within this time.
MAX_SLEEP = 600.0
REMEMBERED_EVENTS = 64


class _Posted:
    """Events already posted by this daemon: a decision repeats its warnings every pass."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first_time(self, event: Event) -> bool:
        key = (event.reason, event.message)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > REMEMBERED_EVENTS:
            self._seen.popitem(last=False)
        return True


class ScheduleReconciler:
    def __init__(self, kube: ScheduleKube, wakeups: Wakeups) -> None:
        self._kube = kube
        self.wakeups = wakeups

    async def run(self, body: kopf.Body, stopped: Stopped, logger: Any) -> None:
        uid = body["metadata"]["uid"]
        wakeup = self.wakeups.register(uid)
        posted = _Posted()
        attempt = 0
        try:
            while not stopped:
                wakeup.clear()  # events from here on wake the wait below
                try:
                    wake_at = await self._reconcile(body, posted, logger)
                except Exception as error:
                    delay = backoff(attempt)
                    attempt += 1
                    logger.warning(f"retrying in {delay:.1f}s: {error}")
                    await self._report(body, error, logger)
                else:
                    attempt = 0
                    delay = MAX_SLEEP
                    if wake_at is not None:
                        due = (wake_at - datetime.now(UTC)).total_seconds() + PADDING
                        delay = min(MAX_SLEEP, max(PADDING, due))
                await wait_for_wakeup(delay, wakeup, stopped)
        finally:
            self.wakeups.forget(uid)

    async def _reconcile(self, body: kopf.Body, posted: _Posted, logger: Any) -> datetime | None:
        obj = plain(body)
        schedule = Schedule.from_object(obj)
        written = _own_status(obj)
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
        for event in decision.events:
            _post(body, posted, event)
        return decision.wake_at

    async def _act(
        self,
        body: kopf.Body,
        schedule: Schedule,
        decision: Decision,
        posted: _Posted,
        logger: Any,
    ) -> None:
        for gone in decision.delete:
            try:
                await asyncio.to_thread(self._kube.delete_export, schedule.namespace, gone.name)
            except client.ApiException as error:
                _post(body, posted, Event("Warning", "FailedDelete", _api_message(error)))
                raise
            message = f"Deleted PinpointExport {gone.name} ({gone.why}); its files stay"
            logger.info(message)
            _post(body, posted, Event("Normal", "SuccessfulDelete", message))
        for run in decision.start:
            manifest = schedule_state.export_manifest(schedule, run)
            try:
                created = await asyncio.to_thread(self._kube.create_export, manifest)
            except client.ApiException as error:
                _post(body, posted, Event("Warning", "FailedCreate", _api_message(error)))
                raise
            why = (
                f"the run of {schedule_state.format_time(run.scheduled_at)}"
                if run.scheduled_at is not None
                else f"trigger {run.trigger!r}"
            )
            if created is Created.CREATED:
                message = f"Created PinpointExport {run.name} for {why}"
                logger.info(message)
                _post(body, posted, Event("Normal", "SuccessfulCreate", message))
            elif created is Created.TAKEN:
                message = (
                    f"PinpointExport {run.name} exists and is not this schedule's: "
                    f"skipped {why}; rename or delete that export"
                )
                _post(body, posted, Event("Warning", "ExportNameTaken", message))

    async def _report(self, body: kopf.Body, error: Exception, logger: Any) -> None:
        """Best effort: show the retried error as Reconciling=True on the status."""
        obj = plain(body)
        written = _own_status(obj)
        if isinstance(error, client.ApiException):
            status_code = int(error.status or 0)
            transient = status_code >= 500 or status_code == 429
            reason = "KubernetesUnavailable" if transient else "KubernetesRejected"
            message = _api_message(error)
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


def _own_status(obj: dict[str, Any]) -> Status:
    """The status without Kopf's bookkeeping, which the operator's decisions never touch."""
    status: Status = obj.get("status") or {}
    status.pop("kopf", None)
    return status


def _merge_patch(old: Status, new: Status) -> Status:
    """A JSON merge patch from `old` to `new` (top-level keys; None removes one)."""
    return {**{key: None for key in old if key not in new}, **new}


def _post(body: kopf.Body, posted: _Posted, event: Event) -> None:
    if posted.first_time(event):
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _api_message(error: client.ApiException) -> str:
    return f"Kubernetes API {error.status} {error.reason}: {error.body}"
