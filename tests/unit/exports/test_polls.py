"""Polls of many exports' jobs: alone, one GetExportJob; waiting together, one listing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoRegionError

from pinpoint_export_operator.exports.polls import JobPolls
from pinpoint_export_operator.runtime.aws import Identity

APP = "0" * 32
IDENTITY = Identity(region="us-east-1", endpoint_url=None)
CREATED = "2026-11-28T10:00:00Z"


def error(code: str, status: int, operation: str) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


class FakePinpoint:
    """GetExportJob and GetExportJobs (one page, newest first) as the boto3 client takes them."""

    def __init__(
        self,
        *job_ids: str,
        unlisted: frozenset[str] = frozenset(),
        listing_error: Exception | None = None,
    ) -> None:
        self.jobs = [{"Id": i, "JobStatus": "PROCESSING", "CreationDate": CREATED} for i in job_ids]
        self.unlisted = unlisted  # jobs that GetExportJob finds and the listing does not show
        self.listing_error = listing_error
        self.calls: list[str] = []

    def get_export_job(self, ApplicationId: str, JobId: str) -> Any:
        self.calls.append(f"GetExportJob {JobId}")
        job = next(j for j in self.jobs if j["Id"] == JobId)
        return {"ExportJobResponse": job}

    def get_export_jobs(self, ApplicationId: str, PageSize: str, Token: str | None = None) -> Any:
        self.calls.append("GetExportJobs")
        if self.listing_error:
            raise self.listing_error
        listed = [j for j in self.jobs if j["Id"] not in self.unlisted]
        return {"ExportJobsResponse": {"Item": listed}}


class FakeAws:
    """AwsCalls with one slot, which the test may hold; calls run on the event loop."""

    def __init__(self, pinpoint: FakePinpoint | Callable[[], Any]) -> None:
        self.pinpoint = pinpoint
        self.busy = asyncio.Lock()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self.slot():
            return await self.call(fn, *args)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.busy:
            yield

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def client(self, service: str, identity: Identity) -> Any:
        return self.pinpoint() if callable(self.pinpoint) else self.pinpoint


async def poll_together(aws: FakeAws, job_ids: list[str]) -> list[Any]:
    """Poll `job_ids` while the only slot is taken, then free it: the polls wait together."""
    polls = JobPolls(aws)  # type: ignore[arg-type]
    async with aws.busy:
        tasks = [asyncio.create_task(polls.poll(IDENTITY, APP, i, CREATED)) for i in job_ids]
        await asyncio.sleep(0)  # lets every poll join its batch (no time passes)
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_poll_alone_is_one_get_export_job() -> None:
    pinpoint = FakePinpoint("a", "b")
    job = await JobPolls(FakeAws(pinpoint)).poll(IDENTITY, APP, "a", CREATED)  # type: ignore[arg-type]
    assert job.id == "a" and job.job_status == "PROCESSING"
    assert pinpoint.calls == ["GetExportJob a"]


async def test_polls_waiting_together_are_answered_by_one_listing() -> None:
    pinpoint = FakePinpoint("c", "b", "a")
    jobs = await poll_together(FakeAws(pinpoint), ["a", "b", "c", "a"])
    assert [j.id for j in jobs] == ["a", "b", "c", "a"]
    assert pinpoint.calls == ["GetExportJobs"]


async def test_a_job_the_listing_does_not_show_is_asked_for_alone() -> None:
    pinpoint = FakePinpoint("b", "a", unlisted={"b"})
    jobs = await poll_together(FakeAws(pinpoint), ["a", "b"])
    assert [j.id for j in jobs] == ["a", "b"]
    assert pinpoint.calls == ["GetExportJobs", "GetExportJob b"]


async def test_a_throttled_listing_fails_every_poll_without_asking_each() -> None:
    throttled = error("TooManyRequestsException", 429, "GetExportJobs")
    pinpoint = FakePinpoint("b", "a", listing_error=throttled)
    answers = await poll_together(FakeAws(pinpoint), ["a", "b"])
    assert answers == [throttled, throttled]
    assert pinpoint.calls == ["GetExportJobs"]


async def test_a_refused_listing_asks_each_job_alone() -> None:
    refused = error("ForbiddenException", 403, "GetExportJobs")
    pinpoint = FakePinpoint("b", "a", listing_error=refused)
    jobs = await poll_together(FakeAws(pinpoint), ["a", "b"])
    assert [j.id for j in jobs] == ["a", "b"]
    assert pinpoint.calls == ["GetExportJobs", "GetExportJob a", "GetExportJob b"]


async def test_a_poll_given_up_on_leaves_the_others_their_answers() -> None:
    pinpoint = FakePinpoint("b", "a")
    aws = FakeAws(pinpoint)
    polls = JobPolls(aws)  # type: ignore[arg-type]
    async with aws.busy:
        given_up = asyncio.create_task(polls.poll(IDENTITY, APP, "a", CREATED))
        kept = asyncio.create_task(polls.poll(IDENTITY, APP, "b", CREATED))
        await asyncio.sleep(0)
        given_up.cancel()
    assert (await kept).id == "b"
    assert given_up.cancelled()


async def test_a_client_that_cannot_be_made_fails_the_poll_and_not_the_next() -> None:
    pinpoint = FakePinpoint("a")
    clients: list[Any] = [NoRegionError(), pinpoint]

    def client() -> Any:
        made = clients.pop(0)
        if isinstance(made, Exception):
            raise made
        return made

    polls = JobPolls(FakeAws(client))  # type: ignore[arg-type]
    with pytest.raises(NoRegionError):
        await polls.poll(IDENTITY, APP, "a", CREATED)
    assert (await polls.poll(IDENTITY, APP, "a", CREATED)).id == "a"
