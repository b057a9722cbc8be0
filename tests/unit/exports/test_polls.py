"""Polls of many exports' jobs: alone, one GetExportJob; waiting together, one listing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoRegionError

from pinpoint_export_operator.exports.polls import JobPolls
from pinpoint_export_operator.runtime.aws import Identity, StaticCredentials

APP = "0" * 32
IDENTITY = Identity(region="us-east-1", endpoint_url=None)
NEW, OLD = "2026-11-28T11:00:00Z", "2026-11-28T09:00:00Z"


def error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetExportJobs")


class FakePinpoint:
    """GetExportJob, and GetExportJobs over fixed pages of job ids (token `pN`: page N), as the
    boto3 client takes them. Ids starting with `old` were created at OLD, the others at NEW."""

    def __init__(self, *pages: list[str], listing_error: Exception | None = None) -> None:
        self.pages = pages
        self.listing_error = listing_error
        self.calls: list[str] = []  # and, in order, the polls answered (`answered <id>`)
        self.ended: set[str] = set()  # jobs COMPLETED by now; the others are PROCESSING

    def get_export_job(self, ApplicationId: str, JobId: str) -> Any:
        self.calls.append(f"GetExportJob {JobId}")
        return {"ExportJobResponse": self.job(JobId)}

    def job(self, job_id: str) -> dict[str, Any]:
        return {**job(job_id), "JobStatus": "COMPLETED" if job_id in self.ended else "PROCESSING"}

    def get_export_jobs(self, ApplicationId: str, PageSize: str, Token: str | None = None) -> Any:
        number = int(Token[1:]) if Token else 1
        self.calls.append(f"GetExportJobs p{number}")
        if self.listing_error:
            raise self.listing_error
        page: dict[str, Any] = {"Item": [self.job(i) for i in self.pages[number - 1]]}
        if number < len(self.pages):
            page["NextToken"] = f"p{number + 1}"
        return {"ExportJobsResponse": page}


def job(job_id: str) -> dict[str, Any]:
    created = OLD if job_id.startswith("old") else NEW
    return {"Id": job_id, "JobStatus": "PROCESSING", "CreationDate": created}


class FakeAws:
    """AwsCalls with one slot, which the test may hold; calls run on the event loop, each
    after the polls already answered have had their turn. Every poll's slot is urgent."""

    def __init__(self, pinpoint: FakePinpoint | Callable[[], Any]) -> None:
        self.pinpoint = pinpoint
        self.busy = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        assert urgent, "a poll takes a free slot before the creates waiting for one"
        async with self.busy:
            yield

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0)
        return fn(*args)

    def client(self, service: str, identity: Identity) -> Any:
        return self.pinpoint() if callable(self.pinpoint) else self.pinpoint


class Watched:
    """Polls that note, in order, the exports they wake."""

    def __init__(self, pinpoint: FakePinpoint) -> None:
        self.aws = FakeAws(pinpoint)
        self.woken: list[str] = []
        self.polls = JobPolls(self.aws, self.woken.append)  # type: ignore[arg-type]


async def poll_together(
    pinpoint: FakePinpoint, job_ids: list[str], watched: Watched | None = None
) -> list[Any]:
    """Poll `job_ids` while the only slot is taken, then free it: the polls wait together."""
    watched = watched or Watched(pinpoint)
    aws, polls = watched.aws, watched.polls

    async def poll(job_id: str) -> Any:
        answer = await polls.poll(IDENTITY, APP, job_id, job(job_id)["CreationDate"])
        pinpoint.calls.append(f"answered {job_id}")
        return answer

    async with aws.busy:
        tasks = [asyncio.create_task(poll(i)) for i in job_ids]
        await asyncio.sleep(0)  # lets every poll join its batch (no time passes)
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_poll_alone_is_one_get_export_job() -> None:
    pinpoint = FakePinpoint(["a", "b"])
    job = await JobPolls(FakeAws(pinpoint)).poll(IDENTITY, APP, "a", NEW)  # type: ignore[arg-type]
    assert job.id == "a" and job.job_status == "PROCESSING"
    assert pinpoint.calls == ["GetExportJob a"]


async def test_polls_waiting_together_are_answered_by_one_listing() -> None:
    pinpoint = FakePinpoint(["c", "b", "a"])
    jobs = await poll_together(pinpoint, ["a", "b", "c", "a"])
    assert [j.id for j in jobs] == ["a", "b", "c", "a"]
    assert [c for c in pinpoint.calls if c.startswith("Get")] == ["GetExportJobs p1"]


async def test_a_poll_is_answered_by_its_page_before_the_next_is_read() -> None:
    pinpoint = FakePinpoint(["a", "x"], ["b", "c"], ["d"])
    await poll_together(pinpoint, ["a", "b", "c"])
    assert pinpoint.calls == [
        "GetExportJobs p1",
        "answered a",
        "GetExportJobs p2",  # found the rest: page 3 is not read
        "answered b",
        "answered c",
    ]


async def test_the_listing_stops_at_a_page_older_than_every_job_wanted() -> None:
    pinpoint = FakePinpoint(["a", "x"], ["old1", "old2"], ["b"])
    jobs = await poll_together(pinpoint, ["a", "b", "c"])
    assert [j.id for j in jobs] == ["a", "b", "c"]
    # b and c are not on pages 1-2, and nothing after page 2 is newer: each asked alone.
    listing = [c for c in pinpoint.calls if c.startswith("Get")]
    assert listing == ["GetExportJobs p1", "GetExportJobs p2", "GetExportJob b", "GetExportJob c"]


async def test_the_listing_reads_no_more_pages_than_jobs_still_missing() -> None:
    pinpoint = FakePinpoint(["a"], ["x"], ["y"], ["b"])
    jobs = await poll_together(pinpoint, ["a", "b"])
    assert [j.id for j in jobs] == ["a", "b"]
    # After page 1, one job is missing and one page was read: asked alone, it costs no more.
    listing = [c for c in pinpoint.calls if c.startswith("Get")]
    assert listing == ["GetExportJobs p1", "GetExportJob b"]


async def test_a_throttled_listing_fails_every_poll_without_asking_each() -> None:
    throttled = error("TooManyRequestsException", 429)
    pinpoint = FakePinpoint(["b", "a"], listing_error=throttled)
    assert await poll_together(pinpoint, ["a", "b"]) == [throttled, throttled]
    assert pinpoint.calls == ["GetExportJobs p1"]


async def test_a_refused_listing_asks_each_job_alone() -> None:
    pinpoint = FakePinpoint(["b", "a"], listing_error=error("ForbiddenException", 403))
    jobs = await poll_together(pinpoint, ["a", "b"])
    assert [j.id for j in jobs] == ["a", "b"]
    listing = [c for c in pinpoint.calls if c.startswith("Get")]
    assert listing == ["GetExportJobs p1", "GetExportJob a", "GetExportJob b"]


async def test_a_poll_given_up_on_leaves_the_others_their_answers() -> None:
    pinpoint = FakePinpoint(["b", "a"])
    aws = FakeAws(pinpoint)
    polls = JobPolls(aws)  # type: ignore[arg-type]
    async with aws.busy:
        given_up = asyncio.create_task(polls.poll(IDENTITY, APP, "a", NEW))
        kept = asyncio.create_task(polls.poll(IDENTITY, APP, "b", NEW))
        await asyncio.sleep(0)
        given_up.cancel()
    assert (await kept).id == "b"
    assert given_up.cancelled()


async def test_a_client_that_cannot_be_made_fails_the_poll_and_not_the_next() -> None:
    pinpoint = FakePinpoint(["a"])
    clients: list[Any] = [NoRegionError(), pinpoint]

    def client() -> Any:
        made = clients.pop(0)
        if isinstance(made, Exception):
            raise made
        return made

    polls = JobPolls(FakeAws(client))  # type: ignore[arg-type]
    with pytest.raises(NoRegionError):
        await polls.poll(IDENTITY, APP, "a", NEW)
    assert (await polls.poll(IDENTITY, APP, "a", NEW)).id == "a"


async def test_a_listing_wakes_the_export_whose_job_ended_between_its_polls() -> None:
    pinpoint = FakePinpoint(["c", "b", "a"])
    watched = Watched(pinpoint)
    polls = watched.polls
    assert (await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")).job_status == "PROCESSING"
    pinpoint.ended.add("a")
    await poll_together(pinpoint, ["b", "c"], watched)  # the listing shows a's end too
    assert watched.woken == ["export-a"]
    calls = len(pinpoint.calls)
    job = await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")
    assert job.id == "a" and job.job_status == "COMPLETED"
    assert len(pinpoint.calls) == calls  # answered by the listing, without a call
    # Taken once: the next poll asks Pinpoint again.
    await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")
    assert pinpoint.calls[-1] == "GetExportJob a"


async def test_a_listing_wakes_no_one_for_jobs_still_running_or_not_polled() -> None:
    pinpoint = FakePinpoint(["c", "b", "a", "x"])
    watched = Watched(pinpoint)
    polls = watched.polls
    await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")
    pinpoint.ended.add("x")  # no export polled it
    await poll_together(pinpoint, ["b", "c"], watched)
    assert watched.woken == []
    await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")
    assert pinpoint.calls[-1] == "GetExportJob a"


async def test_a_listing_made_as_another_identity_wakes_no_one() -> None:
    pinpoint = FakePinpoint(["c", "b", "a"])
    watched = Watched(pinpoint)
    polls = watched.polls
    keys = StaticCredentials("AKIDTENANT", "secret", source="tenant/keys@1")
    tenant = Identity(region="us-east-1", endpoint_url=None, credentials=keys)
    await polls.poll(tenant, APP, "a", NEW, waiter="export-a")
    pinpoint.ended.add("a")
    await poll_together(pinpoint, ["b", "c"], watched)  # as IDENTITY
    assert watched.woken == []


async def test_an_export_forgotten_is_not_woken() -> None:
    pinpoint = FakePinpoint(["c", "b", "a"])
    watched = Watched(pinpoint)
    polls = watched.polls
    await polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")
    polls.forget("export-a")
    pinpoint.ended.add("a")
    await poll_together(pinpoint, ["b", "c"], watched)
    assert watched.woken == []


async def test_a_job_watched_from_its_creation_wakes_its_export_before_any_poll() -> None:
    pinpoint = FakePinpoint(["c", "b", "a"])
    watched = Watched(pinpoint)
    watched.polls.watch(IDENTITY, APP, "a", "export-a")
    pinpoint.ended.add("a")
    await poll_together(pinpoint, ["b", "c"], watched)
    assert watched.woken == ["export-a"]
    assert (await watched.polls.poll(IDENTITY, APP, "a", NEW, waiter="export-a")).job_status == (
        "COMPLETED"
    )
    assert "GetExportJob a" not in pinpoint.calls
