"""The loop that carries one PinpointExport to its end: act, observe, decide, record.

Decisions come from `export_state`; this module only performs the chosen action through the
adapters, patches the status when (and only when) it changed, posts the Events, and waits:
`pollIntervalSeconds` while Pinpoint works, a jittered backoff after a transient error, or
until a copy Job event wakes it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import kopf
from kubernetes import client

from pinpoint_export_operator.config import ExportDefaults
from pinpoint_export_operator.exports import copy_job
from pinpoint_export_operator.exports import state as export_state
from pinpoint_export_operator.exports.kube import CredentialsError, Kube
from pinpoint_export_operator.exports.pinpoint import Pinpoint
from pinpoint_export_operator.exports.state import (
    Action,
    EnsureCopyJob,
    EnsureExportJob,
    Export,
    Observation,
    ObserveCopyJob,
    Outcome,
    PollExportJob,
    Status,
)
from pinpoint_export_operator.runtime import events, metrics
from pinpoint_export_operator.runtime.aws import AwsCalls, Identity, classify
from pinpoint_export_operator.runtime.backoff import backoff
from pinpoint_export_operator.runtime.errors import CloudError, kubernetes_error
from pinpoint_export_operator.runtime.events import Event
from pinpoint_export_operator.runtime.objects import plain
from pinpoint_export_operator.runtime.timestamps import now
from pinpoint_export_operator.runtime.wakeups import Stopped, Wakeups, wait_for_wakeup


class ExportReconciler:
    def __init__(
        self, kube: Kube, aws: AwsCalls, defaults: ExportDefaults, wakeups: Wakeups
    ) -> None:
        self._kube = kube
        self._aws = aws
        self._defaults = defaults
        self.wakeups = wakeups

    def close(self) -> None:
        self._aws.close()

    async def run(self, body: kopf.Body, stopped: Stopped, logger: Any) -> None:
        meta = body["metadata"]
        export = Export(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            creation_timestamp=meta["creationTimestamp"],
            generation=meta.get("generation"),
            spec=dict(body["spec"]),
        )
        status: Status = plain(body.get("status") or {})
        written = status  # what the API server has
        pending: list[Event] = []
        wakeup = self.wakeups.register(export.uid)
        attempt = 0
        started_here = not status.get("phase")
        metrics.ACTIVE.inc()
        try:
            if started_here:
                # Recorded before anything is created anywhere, as the contract says.
                outcome = export_state.start(export, status, now())
                refusal = copy_job.image_refusal(export, self._defaults.copier)
                if refusal:
                    error = CloudError("CopierImageNotAllowed", refusal, transient=False)
                    outcome = export_state.advance(export, status, error, now())
                status = written = await self._commit(
                    body, export, written, outcome.status, outcome.events
                )
            while export_state.is_active(status) and not stopped:
                wakeup.clear()  # events from here on wake the wait below
                outcome = export_state.timed_out(export, status, now()) or await self._step(
                    export, status, first=started_here
                )
                started_here = False  # a retry cannot know that the last attempt created nothing
                status = outcome.status
                pending += outcome.events
                if outcome.again:
                    continue  # the next step is ready: write once, after it
                written = await self._commit(body, export, written, status, pending)
                pending = []
                if outcome.retry:
                    delay = backoff(attempt)
                    attempt += 1
                    logger.info(f"retrying in {delay:.1f}s: {status.get('message')}")
                else:
                    attempt = 0
                    delay = float(export.spec.get("pollIntervalSeconds", 15))
                await wait_for_wakeup(delay, wakeup, stopped)
            await self._commit(body, export, written, status, pending)
        finally:
            metrics.ACTIVE.dec()
            self.wakeups.forget(export.uid)

    async def _step(self, export: Export, status: Status, first: bool) -> Outcome:
        action = export_state.next_action(status)
        if isinstance(action, EnsureExportJob) and first:
            action = replace(action, search=False)
        try:
            seen = await self._perform(export, action)
        except CredentialsError as error:
            seen = error.error
        except client.ApiException as error:
            seen = kubernetes_error(error, type(action).__name__)
        except Exception as error:
            seen = classify(error, type(action).__name__)
        if isinstance(seen, CloudError):
            metrics.CLOUD_ERRORS.labels(seen.reason, str(seen.transient).lower()).inc()
        return export_state.advance(export, status, seen, now())

    async def _perform(self, export: Export, action: Action) -> Observation:
        spec = export.spec
        if isinstance(action, EnsureExportJob | PollExportJob):
            pinpoint = Pinpoint(await self._pinpoint_client(export))
            app = spec["applicationId"]
            if isinstance(action, PollExportJob):
                return await self._aws.run(pinpoint.get_export_job, app, action.job_id)
            if action.search:
                found = await self._aws.run(
                    pinpoint.find_export_job, app, spec.get("segmentId"), action.s3_url
                )
                if found is not None:
                    return found
            return await self._aws.run(
                pinpoint.create_export_job,
                app,
                spec["roleArn"],
                action.s3_url,
                spec.get("segmentId"),
                spec.get("segmentVersion"),
            )
        if isinstance(action, EnsureCopyJob):
            manifest = copy_job.build(export, self._defaults.copier)
            return await asyncio.to_thread(self._kube.ensure_copy_job, manifest)
        if isinstance(action, ObserveCopyJob):
            return await asyncio.to_thread(
                self._kube.observe_copy_job, export.namespace, action.name
            )
        raise AssertionError(f"no action for an export in phase {action!r}")

    async def _pinpoint_client(self, export: Export) -> Any:
        spec = export.spec
        credentials = spec.get("credentials", {})
        secret = credentials.get("secretRef", {}).get("name")
        identity = Identity(
            region=spec.get("region") or self._defaults.region,
            endpoint_url=spec.get("endpointUrl") or self._defaults.pinpoint_endpoint_url,
            credentials=(
                await asyncio.to_thread(self._kube.read_credentials, export.namespace, secret)
                if secret
                else None
            ),
            assume_role_arn=credentials.get("assumeRoleArn"),
        )
        return self._aws.client("pinpoint", identity)

    async def _commit(
        self,
        body: kopf.Body,
        export: Export,
        written: Status,
        status: Status,
        pending: list[Event],
    ) -> Status:
        """Patch the status if it changed since last written, then post the Events."""
        if status != written:
            await asyncio.to_thread(
                self._kube.patch_export_status, export.namespace, export.name, status
            )
            if status.get("phase") != written.get("phase"):
                metrics.TRANSITIONS.labels(status["phase"]).inc()
        for event in pending:
            events.post(body, event)
        return status
