"""PinpointExport end to end: kubectl apply, and the endpoints land verified on the volume."""

from __future__ import annotations

import hashlib
import json

import pytest
from kubernetes import client

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import Exports, Kubectl, exported_ids
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e
ENDPOINTS = 500


def test_happy_path(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess, kubectl: Kubectl
) -> None:
    api, namespace, volume = exports.api, exports.namespace, exports.volume
    emulator.seed(exports.app, ENDPOINTS)
    listed = emulator.counters().get("GetExportJobs", 0)
    exports.apply("nightly")

    finished = exports.wait("nightly")
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
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
