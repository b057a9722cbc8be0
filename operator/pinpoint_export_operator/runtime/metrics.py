"""Prometheus metrics, served in the text format on `--metrics-port` at /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

REGISTRY = CollectorRegistry()

TRANSITIONS = Counter(
    "pinpoint_export_transitions_total",
    "PinpointExport phase transitions, by the phase entered.",
    ["phase"],
    registry=REGISTRY,
)
CLOUD_ERRORS = Counter(
    "pinpoint_export_errors_total",
    "Failed calls to Pinpoint, S3 or Kubernetes, by reason and whether they are retried.",
    ["reason", "transient"],
    registry=REGISTRY,
)
ACTIVE = Gauge(
    "pinpoint_export_active",
    "PinpointExports this replica is carrying (Pending, Exporting or Copying).",
    registry=REGISTRY,
)


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def serve(port: int) -> web.AppRunner:
    """Start serving /metrics on all interfaces; the caller cleans the runner up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
