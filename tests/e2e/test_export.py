"""PinpointExport end to end: kubectl apply, and the endpoints land verified on the volume."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from pinpoint_export_operator import api as names
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import Exports, Kubectl, exported_ids
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e
ENDPOINTS = 500
Json = dict[str, Any]


@contextlib.contextmanager
def versions_of(api: client.ApiClient, namespace: str, name: str) -> Iterator[list[Json]]:
    """Every version of export `name` written while the block runs, as a watch saw them."""
    versions: list[Json] = []
    done = threading.Event()
    custom = client.CustomObjectsApi(api)

    def follow() -> None:
        since = None
        while not done.is_set():
            stream = watch.Watch().stream(
                custom.list_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                namespace,
                names.EXPORTS,
                field_selector=f"metadata.name={name}",
                resource_version=since,
                timeout_seconds=1,
            )
            for event in stream:
                versions.append(event["object"])
                since = event["object"]["metadata"]["resourceVersion"]

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        yield versions
    finally:
        done.set()
        follower.join(timeout=30)


def kopf_status(obj: Json) -> Json:
    kopf: Json = obj.get("status", {}).get("kopf", {})
    return kopf


def test_happy_path(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess, kubectl: Kubectl
) -> None:
    api, namespace, volume = exports.api, exports.namespace, exports.volume
    emulator.seed(exports.app, ENDPOINTS)
    listed = emulator.counters().get("GetExportJobs", 0)
    with versions_of(api, namespace, "nightly") as versions:
        exports.apply("nightly")
        finished = exports.wait("nightly")
        assert finished["status"]["phase"] == "Succeeded", finished["status"]
        process.wait_for(
            lambda: versions and not versions[-1]["metadata"].get("finalizers"),
            60,
            "the finalizer removed",
        )
    # The daemon was gone when Kopf read the final status: Kopf did not patch the object
    # again to see it stop (an API write per export).
    touched = [v["metadata"]["resourceVersion"] for v in versions if "dummy" in kopf_status(v)]
    assert touched == []
    # A run this operator started has no earlier job to adopt: it creates without listing.
    assert emulator.counters().get("GetExportJobs", 0) == listed
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "ppe/nightly", "--timeout=10s")

    export = exports.read("nightly")
    status = export["status"]
    assert status["exportJob"]["jobStatus"] == "COMPLETED"
    assert status["exportJob"]["totalProcessed"] == ENDPOINTS
    run_dir = volume / status["output"]["path"]
    assert status["output"]["path"] == f"marketing/nightly/{status['runId']}"
    # Exactly the seeded endpoints, each once.
    ids = exported_ids(run_dir)
    assert sorted(ids) == sorted(f"ep-{i}" for i in range(ENDPOINTS))
    # The manifest's checksums are those of the files; _SUCCESS and latest are there.
    manifest_doc = json.loads((run_dir / "manifest.json").read_text())
    files = manifest_doc["files"]
    assert len(files) == status["output"]["files"] > 0
    for entry in files:
        data = (run_dir / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert (run_dir / "_SUCCESS").exists()
    assert (volume / "marketing/nightly/latest").resolve() == run_dir.resolve()
    # A finished export carries no finalizer: it can be deleted with the operator down.
    assert not export["metadata"].get("finalizers")

    table = kubectl("get", "ppe", "-n", namespace).stdout
    assert table.split()[:6] == ["NAME", "PHASE", "PROGRESS", "ENDPOINTS", "FILES", "AGE"]
    row = table.splitlines()[1].split()
    assert row[:5] == ["nightly", "Succeeded", row[2], str(ENDPOINTS), str(len(files))]

    def reasons() -> list[str]:
        events = client.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector="involvedObject.name=nightly"
        )
        return [e.reason for e in sorted(events.items, key=lambda e: e.metadata.creation_timestamp)]

    assert 'pinpoint_export_transitions_total{phase="Succeeded"}' in operator.metrics()

    story = ["ExportJobCreated", "CopyJobCreated", "Succeeded"]
    process.wait_for(lambda: set(story) <= set(reasons()), 30, "the Events of the export")
