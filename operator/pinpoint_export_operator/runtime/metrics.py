"""Prometheus metrics, served in the text format on `--metrics-port` at /metrics.

Named by Prometheus's conventions (base units, `_total` counters, `_seconds`, `_bytes`), with
labels of bounded cardinality: operation, phase, reason, namespace; never an object's name
(the per-schedule timestamps of `inventory` are opt-in). The process and Python collectors
are registered too, as the default registry would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from pinpoint_export_operator import __version__

T = TypeVar("T")

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series are noise here
REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

BUILD_INFO = Gauge(
    "pinpoint_export_build_info",
    "The operator's version; always 1.",
    ["version"],
    registry=REGISTRY,
)
BUILD_INFO.labels(__version__).set(1)

TRANSITIONS = Counter(
    "pinpoint_export_transitions_total",
    "PinpointExport phase transitions, by the phase entered.",
    ["phase"],
    registry=REGISTRY,
)
CLOUD_ERRORS = Counter(
    "pinpoint_export_errors_total",
    "Failed steps of an export (Pinpoint, S3 or Kubernetes), by reason and whether retried.",
    ["reason", "transient"],
    registry=REGISTRY,
)
ACTIVE = Gauge(
    "pinpoint_export_active",
    "PinpointExports this replica is carrying (Pending, Exporting or Copying).",
    registry=REGISTRY,
)
PHASE_SECONDS = Histogram(
    "pinpoint_export_phase_duration_seconds",
    "Time an export spent in a phase, seen whole by this replica (Pending, Exporting, Copying).",
    ["phase"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
    registry=REGISTRY,
)
EXPORTED_ENDPOINTS = Counter(
    "pinpoint_export_exported_endpoints_total",
    "Endpoints exported by Pinpoint in exports that succeeded (Pinpoint's TotalProcessed).",
    registry=REGISTRY,
)
COPIED_FILES = Counter(
    "pinpoint_export_copied_files_total",
    "Files the copier wrote to volumes, in exports that succeeded.",
    registry=REGISTRY,
)
COPIED_BYTES = Counter(
    "pinpoint_export_copied_bytes_total",
    "Bytes the copier wrote to volumes, in exports that succeeded.",
    registry=REGISTRY,
)
CALL_SECONDS = Histogram(
    "pinpoint_export_call_duration_seconds",
    "Calls to Pinpoint and to the Kubernetes API, by service and operation.",
    ["service", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CALL_ERRORS = Counter(
    "pinpoint_export_call_errors_total",
    "Failed calls to Pinpoint and to the Kubernetes API, by service, operation and error code.",
    ["service", "operation", "code"],
    registry=REGISTRY,
)
JOB_POLLS = Counter(
    "pinpoint_export_job_polls_total",
    "Polls of Pinpoint export jobs, by the call that answered them: GetExportJob for one job, "
    "GetExportJobs for the polls of one application that waited at the same time.",
    ["answered_by"],
    registry=REGISTRY,
)
SINCE_COMPLETION = Histogram(
    "pinpoint_export_since_completion_seconds",
    "How long after Pinpoint's job completed (its CompletionDate) this replica took a step: "
    "seen (the poll that saw it), copy_job (its copy Job created). AWS's clock and the "
    "operator's may differ.",
    ["step"],
    buckets=(0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10, 15, 30, 60, 300),
    registry=REGISTRY,
)
SCHEDULE_MISSED = Counter(
    "pinpoint_export_schedule_missed_runs_total",
    "Scheduled runs of PinpointExportSchedules that did not start (past their deadline).",
    ["namespace"],
    registry=REGISTRY,
)


LOOP_LAG = Histogram(
    "pinpoint_export_event_loop_lag_seconds",
    "How late the event loop runs a callback that is due: time lost to work that blocks it.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
POOL_WAIT = Histogram(
    "pinpoint_export_pool_wait_seconds",
    "How long a blocking call waited for a thread, by pool (aws, kubernetes).",
    ["pool"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
LAG_PROBE_SECONDS = 0.5


async def watch_loop_lag() -> None:
    """Sleep a fixed time, again and again, and record how much later than asked it woke."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(LAG_PROBE_SECONDS)
        LOOP_LAG.observe(max(0.0, time.monotonic() - start - LAG_PROBE_SECONDS))


class MeasuredPool(ThreadPoolExecutor):
    """A thread pool that records how long each call queued for a thread."""

    def __init__(self, workers: int, name: str) -> None:
        super().__init__(workers, thread_name_prefix=name)
        self._wait = POOL_WAIT.labels(name)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        queued = time.monotonic()

        def run() -> T:
            self._wait.observe(time.monotonic() - queued)
            return fn(*args, **kwargs)

        return super().submit(run)


@contextmanager
def timed_call(service: str, operation: str, code_of: Callable[[Exception], str]) -> Iterator[None]:
    """Observe one call's duration, and count it as an error with `code_of(error)` if it
    raises (the error goes on)."""
    start = time.monotonic()
    try:
        yield
    except Exception as error:
        CALL_ERRORS.labels(service, operation, code_of(error)).inc()
        raise
    finally:
        CALL_SECONDS.labels(service, operation).observe(time.monotonic() - start)


def observe_kubernetes(method: str, resource: str, seconds: float, failure: str | None) -> None:
    """A request to the API server (`kube_json.Observer`): its time, and its error if any (an
    HTTP status, or the exception of a request that got no answer)."""
    operation = f"{method} {resource}"
    CALL_SECONDS.labels("kubernetes", operation).observe(seconds)
    if failure is not None:
        CALL_ERRORS.labels("kubernetes", operation, failure).inc()


async def serve(port: int) -> Any:
    """Start serving /metrics on all interfaces; the caller cleans the runner (an aiohttp
    AppRunner) up. aiohttp is imported here: the copier uses this module's pool, not this."""
    from aiohttp import web

    async def _metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
