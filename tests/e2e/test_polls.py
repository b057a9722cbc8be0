"""Polls that queue for the AWS places are answered together, by a listing, on the emulator.

The tests run their own operator with one AWS place (`--aws-concurrency=1`) while the session's
operator is stopped, and make each GetExportJob hold that place for two seconds: the other
exports' polls (every second) wait together behind it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin
from pinpoint_export_sandbox.stack import SandboxEnv

from .conftest import Exports
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def one_place(
    sandbox: SandboxEnv,
    namespace: str,
    tmp_path: Path,
    session_operator_stopped: None,
    emulator: EmulatorAdmin,
) -> Iterator[OperatorProcess]:
    running = OperatorProcess(
        sandbox, tmp_path / "operator.log", f"--namespaces={namespace}", "--aws-concurrency=1"
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        emulator.reset(state=False)


def answered_by(metrics: str) -> dict[str, float]:
    """pinpoint_export_job_polls_total by the call that answered."""
    pattern = r'^pinpoint_export_job_polls_total\{answered_by="(\w+)"\} (\S+)$'
    return {call: float(n) for call, n in re.findall(pattern, metrics, re.M)}


def test_queued_polls_are_answered_by_one_listing_and_every_export_succeeds(
    exports: Exports, emulator: EmulatorAdmin, one_place: OperatorProcess
) -> None:
    emulator.seed(exports.app, 50)
    emulator.set_faults(freeze_status="PROCESSING")
    names = [f"queued-{n}" for n in range(4)]
    for name in names:
        exports.apply(name)
    for name in names:
        exports.wait(name, "Exporting", timeout=120)

    emulator.set_faults(freeze_status="PROCESSING", latency_seconds=2, operations=["GetExportJob"])
    process.wait_for(
        lambda: answered_by(one_place.metrics()).get("GetExportJobs", 0) >= 3,
        120,
        "polls answered by a listing",
    )
    emulator.set_faults()  # the jobs complete; polls still queue behind the slow ones

    done = [exports.wait(name, timeout=180) for name in names]
    assert [d["status"]["phase"] for d in done] == ["Succeeded"] * len(names)
    # Each export followed its own job: a listing answers each poll by the job's id.
    assert len({d["status"]["exportJob"]["id"] for d in done}) == len(names)
    for export in done:
        assert export["status"]["exportJob"]["totalProcessed"] == 50
        assert export["status"]["output"]["lines"] == 50


def test_a_listing_wakes_an_export_whose_job_ended_before_its_first_poll(
    exports: Exports, emulator: EmulatorAdmin, one_place: OperatorProcess
) -> None:
    """An export that polls once an hour learns of its job's end from the other exports'
    listing, and copies at once."""
    emulator.seed(exports.app, 50)
    exports.apply("patient", pollIntervalSeconds=3600)
    prefix = exports.run_prefix("patient")[1]
    process.wait_for(
        lambda: [j["status"] for j in emulator.jobs(exports.app, prefix)] == ["COMPLETED"],
        60,
        "the patient export's job completed",
    )
    # The others' jobs stay running; their polls (one each in flight) wait together for the
    # one place, as two at least must for a listing.
    emulator.set_faults(freeze_status="PROCESSING", latency_seconds=2, operations=["GetExportJob"])
    busy = [f"busy-{n}" for n in range(4)]
    for name in busy:
        exports.apply(name)

    done = exports.wait("patient", timeout=120)
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["output"]["lines"] == 50
    assert answered_by(one_place.metrics()).get("GetExportJobs", 0) >= 1

    emulator.set_faults()
    for name in busy:
        assert exports.wait(name, timeout=120)["status"]["phase"] == "Succeeded"
