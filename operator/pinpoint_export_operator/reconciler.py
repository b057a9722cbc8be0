"""The loop that carries one PinpointExport to its end: act, observe, decide, record.

Decisions come from `export_state`; this module only performs the chosen action through the
adapters, patches the status when (and only when) it changed, posts the Events, and waits:
`pollIntervalSeconds` while Pinpoint works, a jittered backoff after a transient error, or
until a copy Job event wakes it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import kopf
from kubernetes import client

from pinpoint_export_operator import copy_job, export_state, metrics
from pinpoint_export_operator.aws import AwsCalls, Identity, classify
from pinpoint_export_operator.copy_job import CopierDefaults
from pinpoint_export_operator.export_state import (
    Action,
    CloudError,
    EnsureCopyJob,
    EnsureExportJob,
    Event,
    Export,
    Observation,
    ObserveCopyJob,
    Outcome,
    PollExportJob,
    Status,
)
from pinpoint_export_operator.kube import CredentialsError, Kube
from pinpoint_export_operator.pinpoint import Pinpoint

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0


class Stopped(Protocol):
    """Kopf's daemon stop flag."""

    def __bool__(self) -> bool: ...
    def wait(self) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class Defaults:
    """The operator's configuration for what an export's spec leaves out."""

    copier: CopierDefaults
    region: str | None = None
    pinpoint_endpoint_url: str | None = None


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backoff(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": between half and all of base * 2^attempt."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling / 2 + rng() * ceiling / 2


class Wakeups:
    """One event per running export, set when something it waits on (its copy Job) changed."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def register(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)

    def poke(self, uid: str) -> None:
        if uid in self._events:
            self._events[uid].set()


class ExportReconciler:
    def __init__(self, kube: Kube, aws: AwsCalls, defaults: Defaults, wakeups: Wakeups) -> None:
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
        events: list[Event] = []
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
                events += outcome.events
                if outcome.again:
                    continue  # the next step is ready: write once, after it
                written = await self._commit(body, export, written, status, events)
                events = []
                if outcome.retry:
                    delay = backoff(attempt)
                    attempt += 1
                    logger.info(f"retrying in {delay:.1f}s: {status.get('message')}")
                else:
                    attempt = 0
                    delay = float(export.spec.get("pollIntervalSeconds", 15))
                await wait_for_wakeup(delay, wakeup, stopped)
            await self._commit(body, export, written, status, events)
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
            seen = _kubernetes_error(error, action)
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
        events: list[Event],
    ) -> Status:
        """Patch the status if it changed since last written, then post the Events."""
        if status != written:
            await asyncio.to_thread(
                self._kube.patch_export_status, export.namespace, export.name, status
            )
            if status.get("phase") != written.get("phase"):
                metrics.TRANSITIONS.labels(status["phase"]).inc()
        for event in events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        return status


def _kubernetes_error(error: client.ApiException, action: Action) -> CloudError:
    status = int(error.status or 0)
    text = f"{type(action).__name__}: Kubernetes API {status} {error.reason}: {error.body}"
    if status >= 500 or status == 429:
        return CloudError("KubernetesUnavailable", text, transient=True)
    return CloudError("KubernetesRejected", text, transient=False)


async def wait_for_wakeup(delay: float, wakeup: asyncio.Event, stopped: Stopped) -> None:
    waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def plain(value: Any) -> Any:
    """A deep plain-dict copy of Kopf's read-only body views."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
