"""Export jobs end to end against an in-memory S3 stand-in: pieces, markers, failures, faults."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from pinpoint_export_sandbox.emulator.export import (
    ACCESS_CHECK,
    SUCCESS,
    PieceWriter,
    S3Url,
    parse_s3_url,
)
from pinpoint_export_sandbox.emulator.faults import FaultInjector, Faults
from pinpoint_export_sandbox.emulator.jobs import JobRunner, Timing
from pinpoint_export_sandbox.emulator.storage import Endpoints, ExportJob

APP = "a" * 32
ROLE = "arn:aws:iam::123456789012:role/export"


class MemoryS3:
    """Just enough of an S3 client for PieceWriter."""

    def __init__(self, buckets: set[str]) -> None:
        self.buckets = buckets
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:
        if Bucket not in self.buckets:
            error = {"Error": {"Code": "NoSuchBucket", "Message": "no"}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]
        self.objects[Bucket, Key] = Body

    def lines(self, key: str) -> list[dict[str, Any]]:
        text = gzip.decompress(self.objects["bucket", key]).decode()
        return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", S3Url("bucket", "")),
        ("s3://bucket/", S3Url("bucket", "")),
        ("s3://bucket/a/b", S3Url("bucket", "a/b/")),
        ("s3://my.bucket-1/a/b/", S3Url("my.bucket-1", "a/b/")),
    ],
)
def test_s3_urls(url: str, expected: S3Url) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize("url", ["bucket/a", "s3://", "s3://Bucket/", "s3://a/", "http://bucket/"])
def test_invalid_s3_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_s3_url(url)


def make_runner(
    s3: MemoryS3, faults: FaultInjector | None = None, piece_size: int = 4
) -> JobRunner:
    writer = PieceWriter(cast(Any, s3))
    return JobRunner(writer, faults or FaultInjector(), Timing(0, piece_size), workers=2)


def make_job(count: int, role: str = ROLE, url: str = "s3://bucket/out") -> ExportJob:
    endpoints = Endpoints(APP)
    endpoints.seed(count, seed=3, prefix="ep-")
    definition = {"RoleArn": role, "S3UrlPrefix": url}
    return ExportJob("job1", APP, definition, endpoints.source())


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` for up to 10 s (a job signals no event per status)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("condition not met within 10 s")


async def run(runner: JobRunner, job: ExportJob) -> ExportJob:
    await asyncio.wait_for(runner.start(job), 10)
    await runner.close()
    return job


async def test_a_job_writes_its_pieces_and_markers() -> None:
    s3 = MemoryS3({"bucket"})
    job = await run(make_runner(s3), make_job(10))
    assert job.status == "COMPLETED"
    response = job.response()
    assert (response["TotalPieces"], response["CompletedPieces"], response["TotalProcessed"]) == (
        3,
        3,
        10,
    )
    keys = sorted(k for _, k in s3.objects)
    assert keys == sorted(
        [f"out/job1/{n}.gz" for n in range(3)] + [f"out/job1/{ACCESS_CHECK}", f"out/job1/{SUCCESS}"]
    )
    exported = [e for n in range(3) for e in s3.lines(f"out/job1/{n}.gz")]
    assert exported == list(make_job(10).source)
    assert [len(s3.lines(f"out/job1/{n}.gz")) for n in range(3)] == [4, 4, 2]


async def test_an_empty_export_still_writes_one_piece() -> None:
    s3 = MemoryS3({"bucket"})
    job = await run(make_runner(s3), make_job(0))
    assert (job.status, job.total_pieces, s3.lines("out/job1/0.gz")) == ("COMPLETED", 1, [])


@pytest.mark.parametrize(
    ("job", "failure"),
    [
        (make_job(5, url="s3://missing/"), "NoSuchBucket"),
        (make_job(5, role="not-an-arn"), "Unable to assume role"),
        (make_job(5, role="arn:aws:iam::12345:role/short-account"), "Unable to assume role"),
    ],
)
async def test_failures_end_the_job_failed(job: ExportJob, failure: str) -> None:
    job = await run(make_runner(MemoryS3({"bucket"})), job)
    assert job.status == "FAILED"
    assert failure in job.response()["Failures"][0]
    assert job.response()["CompletionDate"]


async def test_injected_failures_and_frozen_statuses() -> None:
    faults = FaultInjector()
    await faults.configure(Faults(fail_jobs=1, freeze_status="INITIALIZING"))
    runner = make_runner(MemoryS3({"bucket"}), faults)
    doomed, healthy = make_job(5), make_job(5)
    tasks = [runner.start(doomed), runner.start(healthy)]
    await until(lambda: doomed.status == healthy.status == "INITIALIZING")
    # A negative check needs a window: unfrozen, these zero-step jobs would finish within it.
    await asyncio.sleep(0.05)
    assert doomed.status == healthy.status == "INITIALIZING"
    await faults.configure(Faults())
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert (doomed.status, healthy.status) == ("FAILED", "COMPLETED")
    assert doomed.failed_pieces == doomed.total_pieces == 2
    assert faults.faults.fail_jobs == 0
    await runner.close()
