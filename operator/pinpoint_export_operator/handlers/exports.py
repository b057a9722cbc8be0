"""PinpointExport: one daemon per active export, woken early by its copy Job's events."""

from __future__ import annotations

from typing import Any, cast

import kopf

from pinpoint_export_operator import api
from pinpoint_export_operator.exports.state import is_active
from pinpoint_export_operator.exports.status import ExportStatus


def _active(status: kopf.Status, **_: Any) -> bool:
    return is_active(cast(ExportStatus, dict(status)))


# A daemon rather than a fixed-interval timer: each export polls at its own
# pollIntervalSeconds and backs off on its own. The filter stops it (and Kopf drops the
# finalizer) once the export is Succeeded or Failed, so finished exports delete freely.
# Stopping is graceful first (the loop sees `stopped` after finishing its step, so a status
# patch and its Events are never cut apart), and forced only after the backoff.
@kopf.daemon(
    api.GROUP,
    api.VERSION,
    api.EXPORTS,
    when=_active,
    cancellation_backoff=10.0,
    cancellation_timeout=5.0,
)
async def reconcile_export(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    await memo.exports.run(body, stopped, logger)


# Async, so that the wakeup (an asyncio.Event) is set on the event loop, not from Kopf's
# thread pool where sync handlers run. A Job being deleted also loses its finalizer here once
# its result is recorded, or will never be (its export is finished, gone or being deleted).
@kopf.on.event("batch", "v1", "jobs", labels={api.LABEL_MANAGED_BY: api.MANAGER})
async def copy_job_changed(
    type: str | None, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    await memo.exports.copy_job_seen(type, body, logger)


@kopf.on.event(api.GROUP, api.VERSION, api.EXPORTS)
async def export_seen(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.inventory.saw_export(type, body)
    memo.exports.saw(body)
