"""Health as GitOps tools read it, asked of live objects in every phase: kstatus (what Flux's
health checks compute; tools/kstatus) and the Argo CD Lua checks (integrations/argocd). What
each must say is read from docs/operations.md's GitOps health tables (tests/unit/docs_tables.py,
whose reading tests/unit/test_docs_tables.py checks without a cluster).

With PPE_CAPTURE_TESTDATA=1 the objects verified here become the Lua checks' testdata and
health_test.yaml, so that the unit tests run the checks on what the operator really writes.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from pinpoint_export_sandbox import binaries, process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.testing import Kubectl

from .conftest import ROOT, Exports
from .operator_process import OperatorProcess
from .test_export_failures import clean_emulator  # noqa: F401  (autouse: no faults left over)
from .test_schedule import (
    apply,
    observed,
    read_schedule,
    schedule_manifest,
    schedules,  # noqa: F401  (fixture: the schedules go before the operator stops)
    trigger,
)

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]
CAPTURE = os.environ.get("PPE_CAPTURE_TESTDATA") == "1"


def load(name: str, path: Path) -> Any:
    """A module of the repository that is not in a package on the path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


checks = load("checks", ROOT / "integrations/argocd/checks.py")
# docs/operations.md's GitOps health tables, read as the unit tests read them.
docs_tables = load("docs_tables", ROOT / "tests/unit/docs_tables.py")


@dataclass(frozen=True)
class Expected:
    argocd: str  # hs.status
    message: Callable[[Obj], str | None]  # where hs.message comes from
    kstatus: str  # kstatus' Status


def expected(kind: str) -> dict[str, Expected]:
    """Each case of `kind` as the docs' Argo CD and Flux tables say; kstatus reads an object
    without conditions as Current, so does Flux one the operator has not written yet."""
    argocd, flux = docs_tables.health_rows("Argo CD"), docs_tables.health_rows("Flux")
    found = {}
    for case, keys in docs_tables.CASES[kind].items():
        row = docs_tables.row_of(argocd, kind, keys)
        kstatus = docs_tables.row_of(flux, kind, keys).verdict("kstatus")
        found[case] = Expected(
            row.verdict("Argo CD health"), docs_tables.argocd_message(row), kstatus
        )
    return found


@pytest.fixture(scope="module")
def kstatus_binary() -> Path:
    """The checker, built on first use (tools/build.sh reuses a cached build)."""
    try:
        return binaries.find("kstatus")
    except binaries.BinaryNotFound:
        subprocess.run([str(ROOT / "tools" / "build.sh"), "kstatus"], check=True, timeout=1200)
        return binaries.find("kstatus")


def kstatus(binary: Path, objects: list[Obj]) -> list[Obj]:
    """kstatus' verdict on each object, in order."""
    done = subprocess.run(
        [str(binary)],
        input="".join(json.dumps(o) + "\n" for o in objects),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [v["name"] for v in verdicts] == [o["metadata"]["name"] for o in objects]
    return verdicts


def verify(binary: Path, kind: str, expected: dict[str, Expected], seen: dict[str, Obj]) -> None:
    """Assert both verdicts on every case at once, then capture the cases if asked to."""
    (check,) = [c for c in checks.checks() if c.kind == kind]
    verdicts = kstatus(binary, list(seen.values()))
    got = {
        case: (checks.health(check.script, obj), verdict["status"])
        for (case, obj), verdict in zip(seen.items(), verdicts, strict=True)
    }
    want = {
        case: (checks.Health(e.argocd, e.message(seen[case])), e.kstatus)
        for case, e in expected.items()
    }
    assert got == want
    if CAPTURE:
        capture(check.directory, expected, seen)


def capture(directory: Path, expected: dict[str, Expected], seen: dict[str, Obj]) -> None:
    """Write the objects as testdata (status as the operator wrote it) and health_test.yaml
    in argo-cd's format, with the expected health, not the script's."""
    tests = []
    for case, e in expected.items():
        path = f"testdata/{case}.yaml"
        (directory / path).write_text(dump(trimmed(seen[case])))
        health = {"status": e.argocd, "message": e.message(seen[case])}
        tests.append({"healthStatus": health, "inputPath": path})
    (directory / "health_test.yaml").write_text(dump({"tests": tests}))


def trimmed(obj: Obj) -> Obj:
    """Without what only the API server's bookkeeping needs, and kubectl's copy of the spec."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    for key in ("uid", "resourceVersion", "managedFields"):
        meta.pop(key, None)
    annotations = meta.get("annotations", {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    return obj


def dump(data: Any) -> str:
    """YAML with each message on one line, so that a new capture diffs line by line."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1 << 20)


def before_the_operator(operator: OperatorProcess, create: Callable[[], Obj]) -> Obj:
    """The object as created, before any operator wrote to it: the operator is down meanwhile."""
    operator.kill()
    try:
        obj = create()
    finally:
        operator.start()
    assert "status" not in obj
    return obj


def test_exports_in_every_phase(
    exports: Exports,
    emulator: EmulatorAdmin,
    operator: OperatorProcess,
    kstatus_binary: Path,
) -> None:
    emulator.seed(exports.app, 20)
    seen = {"created": before_the_operator(operator, lambda: exports.apply("all-endpoints"))}
    seen["succeeded"] = exports.wait("all-endpoints", "Succeeded")

    # No node has this label: the copy pod is never bound, the export stays Copying.
    exports.apply("copying", copy={"nodeSelector": {"pinpoint.exports.dev/e2e": "nowhere"}})
    seen["copying"] = exports.wait("copying", "Copying")

    emulator.set_faults(fail_jobs=1)
    exports.apply("failed")
    seen["failed"] = exports.wait("failed", "Failed")

    emulator.set_faults(freeze_status="PROCESSING")
    exports.apply("exporting")
    seen["exporting"] = exports.wait("exporting", "Exporting")

    # CreateExportJob answers after 20 s: the export is Pending meanwhile.
    emulator.set_faults(latency_seconds=20, operations=["CreateExportJob"])
    exports.apply("pending")
    seen["pending"] = exports.wait("pending", "Pending")

    verify(kstatus_binary, "PinpointExport", expected("PinpointExport"), seen)


def test_schedules_in_every_state(
    api: client.ApiClient,
    exports: Exports,
    schedules: str,  # noqa: F811
    kubectl: Kubectl,
    operator: OperatorProcess,
    kstatus_binary: Path,
) -> None:
    namespace = exports.namespace
    failing = schedule_manifest("failing", exports.app)
    # An application Pinpoint does not know: every run fails at once.
    failing["spec"]["exportTemplate"]["spec"]["applicationId"] = uuid.uuid4().hex
    manifests = {
        "nightly": schedule_manifest("nightly", exports.app),
        "suspended": schedule_manifest("suspended", exports.app, suspend=True),
        "atlantis": schedule_manifest("atlantis", exports.app, timeZone="Europe/Atlantis"),
        "failing": failing,
    }

    def create_nightly() -> Obj:
        apply(kubectl, namespace, manifests["nightly"])
        return read_schedule(api, namespace, "nightly")

    seen = {"created": before_the_operator(operator, create_nightly)}
    for name in ("suspended", "atlantis", "failing"):
        apply(kubectl, namespace, manifests[name])
    seen["scheduled"] = observed(api, namespace, "nightly")
    seen["suspended"] = observed(api, namespace, "suspended")
    seen["invalid-time-zone"] = observed(api, namespace, "atlantis")

    observed(api, namespace, "failing")  # the example's trigger value is its baseline
    trigger(kubectl, namespace, "failing", "run-1")

    def last_run_failed() -> Obj | None:
        obj = read_schedule(api, namespace, "failing")
        conditions = obj.get("status", {}).get("conditions", [])
        return obj if any(c["reason"] == "LastRunFailed" for c in conditions) else None

    seen["last-run-failed"] = process.wait_for(last_run_failed, 120, "LastRunFailed", interval=0.5)

    verify(kstatus_binary, "PinpointExportSchedule", expected("PinpointExportSchedule"), seen)
