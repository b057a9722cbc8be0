"""Operator start-up and shut-down: Kopf's settings, and everything the handlers use.

The one startup handler builds both reconcilers, their clients and the metrics endpoint from
the configuration in `memo.config`, and puts them in the memo for the handlers to use.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import kopf
from kubernetes import client, config

from pinpoint_export_operator import api
from pinpoint_export_operator.config import OperatorConfig
from pinpoint_export_operator.exports.kube import Kube
from pinpoint_export_operator.exports.reconciler import ExportReconciler
from pinpoint_export_operator.runtime import kopf_session, memory, metrics
from pinpoint_export_operator.runtime.aws import AwsCalls
from pinpoint_export_operator.runtime.inventory import Inventory
from pinpoint_export_operator.runtime.kube_json import KubeJson, served_resources
from pinpoint_export_operator.runtime.objects import KOPF_STATUS_KEY
from pinpoint_export_operator.runtime.wakeups import Wakeups
from pinpoint_export_operator.schedules.kube import ScheduleKube
from pinpoint_export_operator.schedules.reconciler import ScheduleReconciler

SCHEDULES_API_POOL = 4  # schedules make a few calls a minute at most
# Threads for the reconcilers' Kubernetes calls (asyncio's default executor). At 500 exports
# the API server answers in tenths of a second, seconds on a loaded machine: each call holds a
# thread that long, and with 20 threads calls queued for seconds (p50 5 s) before they began.
KUBERNETES_THREADS = 32
# Threads that only create copy Jobs, so that a finished export's copy never queues behind the
# other calls (its pool is `copy_jobs` in pinpoint_export_pool_wait_seconds). They come in
# bursts: one listing answers the polls of up to 100 jobs, and jobs started together end
# together. At 500 exports, with 8 of these threads, creates still queued for up to 10 s.
COPY_JOB_THREADS = 32


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo.config
    apply_settings(settings, cfg)

    # Every Kubernetes call of the reconcilers runs in asyncio's default executor, which is
    # min(32, CPUs + 4) threads: 6 on two cores, a queue behind which hundreds of exports
    # would wait. The exports' client has a connection for each of its threads: with fewer,
    # urllib3 discards a connection after each call beyond them and the next opens a new one
    # (a TLS handshake).
    threads = max(KUBERNETES_THREADS, cfg.aws_concurrency) + SCHEDULES_API_POOL
    asyncio.get_running_loop().set_default_executor(metrics.MeasuredPool(threads, "kubernetes"))
    memo.background = [
        asyncio.create_task(metrics.watch_loop_lag()),
        asyncio.create_task(memory.release_free_memory_periodically()),
    ]

    memo.exports = ExportReconciler(
        Kube(kube_json(threads + COPY_JOB_THREADS)),
        AwsCalls(cfg.aws_concurrency),
        cfg.defaults,
        Wakeups(),
        copy_jobs=metrics.MeasuredPool(COPY_JOB_THREADS, "copy_jobs"),
    )
    memo.discovery = kube_json(SCHEDULES_API_POOL)
    memo.schedules = ScheduleReconciler(ScheduleKube(memo.discovery), Wakeups())
    memo.inventory = Inventory(per_schedule=cfg.metrics_per_schedule)
    metrics.REGISTRY.register(memo.inventory)
    if cfg.metrics_port:
        memo.metrics = await metrics.serve(cfg.metrics_port)


def apply_settings(settings: kopf.OperatorSettings, cfg: OperatorConfig) -> None:
    """Kopf's settings for this operator: where its records go, what it posts as Events and
    as whom, what it watches, and its peering."""
    settings.persistence.finalizer = api.FINALIZER
    # Kopf's progress and diff-base records go into annotations by default; these objects
    # are declared by GitOps tools, so keep Kopf's bookkeeping out of their metadata: in
    # status.kopf.progress, .last-handled-configuration and .dummy (which Kopf writes to wake
    # itself, e.g. to release a finalizer once a daemon stopped), kept by both CRDs' schemas.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(name=KOPF_STATUS_KEY)
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(name=KOPF_STATUS_KEY)
    # Our Events are explicit and one per transition; Kopf's own log lines are not Events.
    settings.posting.level = logging.ERROR
    # Events say who posted them: this operator, and which replica (the pod's name, which
    # Kubernetes gives the container as its hostname).
    settings.posting.reporting_component = api.MANAGER
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = f"{api.MANAGER}-"
    # Resources and namespaces are known up front: no cluster-wide CRD or namespace listing,
    # so the least-privilege RBAC of the chart needs neither.
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    if cfg.peering:
        settings.peering.name = cfg.peering
        settings.peering.standalone = False
        settings.peering.priority = cfg.peering_priority


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """The client library's credentials (in-cluster, else the kubeconfig), as Kopf's own login
    would find them, in a session that bounds Kopf's requests in flight (`kopf_session`).
    Async: the session is made on the event loop that uses it."""
    info = kopf.login_via_client(**kwargs)
    return kopf_session.session(info) if info is not None else None


@kopf.on.probe(id="resources")
async def resources_served(memo: kopf.Memo, **_: Any) -> str:
    """/healthz fails while the API server does not serve both resources: an operator started
    before its CRDs would otherwise serve nothing behind a green probe."""
    served = await asyncio.to_thread(served_resources, memo.discovery, api.API_VERSION)
    missing = {api.EXPORTS, api.SCHEDULES} - served
    if missing:
        raise kopf.PermanentError(f"{api.API_VERSION} does not serve {', '.join(sorted(missing))}")
    return "served"


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    if "exports" in memo:
        memo.exports.close()
    if "metrics" in memo:
        await memo.metrics.cleanup()
    for task in memo.get("background", []):
        task.cancel()
    if "inventory" in memo:
        metrics.REGISTRY.unregister(memo.inventory)


def kube_json(pool_size: int) -> KubeJson:
    """A client of the API server (in-cluster, else the kubeconfig), its calls measured."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return KubeJson(client.ApiClient(configuration), observe=metrics.observe_kubernetes)
