"""One Pinpoint job per export, under the failures that hurt: answers lost after Pinpoint
acted, a dropped connection, a create that Pinpoint finishes after the operator stopped
waiting, an operator killed while its create is in flight, two operators racing, slow and
truncated listings of jobs, a long job history under throttling.

Jobs are counted by the emulator (the jobs whose S3 prefix is the run's), not by requests
received: a request can arrive without creating anything, and a job can be created without
its answer arriving. The files on the volume must hold each endpoint once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from pinpoint_export_operator.runtime.aws import READ_TIMEOUT
from pinpoint_export_sandbox import process
from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import ROLE_ARN, Exports, exported_ids
from .operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

ENDPOINTS = 300


@pytest.fixture(autouse=True)
def clean_emulator(emulator: EmulatorAdmin) -> Iterator[None]:
    emulator.reset(state=False)
    yield
    emulator.reset(state=False)


def pinpoint(emulator: EmulatorAdmin) -> Any:
    """An unmodified boto3 client; the emulator takes any signed request."""
    return boto3.client(
        "pinpoint",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def run_jobs(emulator: EmulatorAdmin, exports: Exports, export: dict[str, Any]) -> list[Any]:
    return emulator.jobs(exports.app, export["status"]["exportJob"]["s3Url"])


# How the listings of export jobs the search reads may be: as they are, slow (each page takes
# seconds, so a search lasts), or truncated (one job per page, so a search pages).
LISTINGS = pytest.mark.parametrize(
    "listing",
    [{}, {"list_latency_seconds": 3}, {"list_page_limit": 1}],
    ids=["listing-plain", "listing-slow", "listing-truncated"],
)


def assert_exactly_once(emulator: EmulatorAdmin, exports: Exports, name: str) -> None:
    export = exports.wait(name, timeout=240)
    assert export["status"]["phase"] == "Succeeded", export["status"]
    jobs = run_jobs(emulator, exports, export)
    assert len(jobs) == 1, jobs
    ids = exported_ids(exports.volume / export["status"]["output"]["path"])
    assert len(ids) == ENDPOINTS and len(set(ids)) == ENDPOINTS


@LISTINGS
@pytest.mark.parametrize(
    ("lost", "code"),
    [
        ("error", "InternalServerErrorException"),  # 500 after the job was made
        ("error", "502"),  # a gateway's 502, no modeled body
        ("error", "503"),  # a gateway's 503, no modeled body
        ("drop", None),  # the connection closed without an answer
    ],
)
def test_a_lost_answer_to_the_create_makes_no_second_job(
    exports: Exports,
    emulator: EmulatorAdmin,
    lost: str,
    code: str | None,
    listing: dict[str, Any],
) -> None:
    emulator.seed(exports.app, ENDPOINTS)
    faults: dict[str, Any] = {"lose_response": lost, "lose_count": 1, **listing}
    if code:
        faults["lose_response_code"] = code
    emulator.set_faults(operations=["CreateExportJob"], **faults)
    name = f"lost-{lost}-{(code or 'none').lower()[:8]}"
    exports.apply(name)
    # Jobs of other runs made after this one's: the search reads past them (a page each when
    # truncated) before it finds this run's job.
    _, prefix = exports.run_prefix(name)
    process.wait_for(lambda: emulator.jobs(exports.app, prefix), 60, "the run's job made")
    namespace_prefix = prefix.removesuffix("/").rsplit("/", 2)[0]  # …/<namespace>
    for other in range(3):
        request = {"RoleArn": ROLE_ARN, "S3UrlPrefix": f"{namespace_prefix}/other-{other}/"}
        pinpoint(emulator).create_export_job(ApplicationId=exports.app, ExportJobRequest=request)
    assert_exactly_once(emulator, exports, name)
    # The lost answer was not retried blindly: the next attempt looked first, and adopted.
    assert "ExportJobAdopted" in exports.event_reasons(name)


def test_killed_while_the_create_is_in_flight_makes_one_job(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess
) -> None:
    """SIGKILL while Pinpoint is still making the job: the restarted operator waits out the
    dead one's claim, then finds the job by its prefix rather than creating another."""
    emulator.seed(exports.app, ENDPOINTS)
    emulator.set_faults(operations=["CreateExportJob"], latency_seconds=5)
    exports.apply("in-flight")
    process.wait_for(
        lambda: emulator.counters().get("CreateExportJob", 0) >= 1, 60, "CreateExportJob sent"
    )
    operator.kill()  # the emulator is still inside the call, 5 s from answering
    operator.start()
    assert_exactly_once(emulator, exports, "in-flight")


def test_a_create_pinpoint_finishes_after_the_operator_stopped_waiting_makes_one_job(
    exports: Exports, emulator: EmulatorAdmin
) -> None:
    """Pinpoint makes the job 5 s after the operator's read timeout: a search as soon as the
    timeout is retried would not see it yet. The operator waits one call's time first, then
    finds the job and adopts it."""
    emulator.seed(exports.app, ENDPOINTS)
    emulator.set_faults(operations=["CreateExportJob"], latency_seconds=READ_TIMEOUT + 5)
    exports.apply("slow-create")
    assert_exactly_once(emulator, exports, "slow-create")
    assert "ExportJobAdopted" in exports.event_reasons("slow-create")
    # A second create would make its job only 35 s after it was sent, maybe after the export
    # ended: the calls are what show it was never sent.
    assert emulator.counters()["CreateExportJob"] == 1


@LISTINGS
def test_two_operators_racing_make_one_job(
    exports: Exports,
    emulator: EmulatorAdmin,
    operator: OperatorProcess,
    tmp_path: Path,
    listing: dict[str, Any],
) -> None:
    """Two replicas without peering both run the export's daemon: the claim, a status write
    preconditioned on resourceVersion, lets one of them call Pinpoint."""
    emulator.seed(exports.app, ENDPOINTS)
    # A slow create widens the window in which the other replica could act.
    emulator.set_faults(operations=["CreateExportJob"], latency_seconds=2, **listing)
    second = OperatorProcess(operator.sandbox, tmp_path / "second.log")
    second.start()
    try:
        exports.apply("raced")
        assert_exactly_once(emulator, exports, "raced")
    finally:
        second.stop()


def test_a_search_over_a_long_history_under_throttling_ends(
    exports: Exports, emulator: EmulatorAdmin, operator: OperatorProcess
) -> None:
    """A run resumed by a new process (its claim expired, the create may have acted) looks
    for its job among 10,000 older ones, with 30% of the listing calls throttled."""
    emulator.seed(exports.app, ENDPOINTS)
    operator.kill()
    try:
        exports.apply("resumed")
        exports.resume_as_pending("resumed", claimed_by="operator-gone", seconds_ago=600)
        emulator.seed_history(exports.app, 10_000, before=datetime(2026, 1, 1, tzinfo=UTC))
        emulator.set_faults(operations=["GetExportJobs"], throttle_rate=0.3, seed=11)
    finally:
        operator.start()
    assert_exactly_once(emulator, exports, "resumed")
    listings = emulator.counters().get("GetExportJobs", 0)
    # Newest first, so the first page of 100 older jobs ends the search; throttled pages
    # are asked for again, not the history from page 1: a few calls, not 100 pages.
    assert 1 <= listings <= 10, listings
