"""Polls of Pinpoint export jobs, answered together when many wait at once.

Each export polls its job every `pollIntervalSeconds`. With 2,000 exports at once the polls
queued for the AWS slots, and each export saw its job once a minute rather than every 5 s.
Polls of one application, as one identity, that wait for a slot at the same time are answered
by one listing when they get it (GetExportJobs: newest first, so running jobs come first, a
hundred to a page). A poll that waits alone is one GetExportJob, as before, and so is a poll
whose job the listing does not show. Polls take a slot that comes free before the creates
waiting for one (runtime/places.py).

A listing also shows the jobs of exports that are between polls (or before their first). When
one of those has ended, its export is woken and its next poll takes that answer without a call:
at 500 exports, the copy Job then waits for the next listing (a second or less) rather than the
export's own next poll (up to the interval).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pinpoint_export_operator.exports.pinpoint import (
    Pinpoint,
    created_before,
    job_moment,
)
from pinpoint_export_operator.exports.state import PINPOINT_ENDED
from pinpoint_export_operator.exports.steps import ExportJob
from pinpoint_export_operator.runtime import metrics
from pinpoint_export_operator.runtime.aws import AwsCalls, Identity, classify

Answer = asyncio.Future[ExportJob]
JobKey = tuple[str, str]  # application id, job id


@dataclass
class _Batch:
    """The polls of one application, as one identity, waiting for the same slot."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)  # by job id
    created: dict[str, datetime | None] = field(default_factory=dict)  # by job id

    def oldest(self) -> datetime | None:
        """The oldest job's creation: the listing need not look further back. None if any
        job's creation is unknown."""
        dates = list(self.created.values())
        return None if None in dates else min(d for d in dates if d is not None)


@dataclass
class _Watch:
    """An export's job, running when it was made or last polled."""

    identity: Identity  # as whom it was polled: a listing made as another tells it nothing
    job: JobKey
    ended: ExportJob | None = None  # as a listing saw it end since, for the next poll


class JobPolls:
    def __init__(self, aws: AwsCalls, wake: Callable[[str], None] = lambda waiter: None) -> None:
        self._aws = aws
        self._wake = wake  # wakes an export (by uid) whose job a listing saw end
        self._batches: dict[tuple[Identity, str], _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # kept: the loop holds tasks weakly
        self._watches: dict[str, _Watch] = {}  # by the export's uid
        self._waiters: dict[JobKey, str] = {}  # the same, by job

    async def poll(
        self,
        identity: Identity,
        application_id: str,
        job_id: str,
        created: str | None,
        waiter: str | None = None,
    ) -> ExportJob:
        """The job as Pinpoint has it now; raises what the call that answered it raised.
        `waiter` (an export's uid) is woken if a listing sees the job end before its next
        poll, which then needs no call."""
        watch = self._watches.get(waiter) if waiter else None
        if watch and watch.ended and watch.job == (application_id, job_id):
            metrics.JOB_POLLS.labels("GetExportJobs").inc()
            job = watch.ended
        else:
            job = await self._ask_for(identity, application_id, job_id, created)
        if waiter and job.job_status in PINPOINT_ENDED:
            self.forget(waiter)
        elif waiter:
            self.watch(identity, application_id, job_id, waiter)
        return job

    def watch(self, identity: Identity, application_id: str, job_id: str, waiter: str) -> None:
        """Wake `waiter` (an export's uid) if a listing made as `identity` shows the job ended
        before its next poll: from its creation, so a job that ends before its export's first
        poll is seen too."""
        self.forget(waiter)
        self._watches[waiter] = _Watch(identity, (application_id, job_id))
        self._waiters[(application_id, job_id)] = waiter

    def forget(self, waiter: str) -> None:
        """The export no longer polls its job (it ended, was deleted, or the operator stops)."""
        watch = self._watches.pop(waiter, None)
        if watch is not None:
            self._waiters.pop(watch.job, None)

    async def _ask_for(
        self, identity: Identity, application_id: str, job_id: str, created: str | None
    ) -> ExportJob:
        key = (identity, application_id)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch()
            task = asyncio.create_task(self._answer(key, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        answer: Answer = asyncio.get_running_loop().create_future()
        batch.answers.setdefault(job_id, []).append(answer)
        batch.created[job_id] = job_moment(created)
        return await answer

    async def _answer(self, key: tuple[Identity, str], batch: _Batch) -> None:
        try:
            await self._ask(key, batch)
        except Exception as error:  # before any call (a client without a region, say)
            for answers in batch.answers.values():
                _fail(answers, error)
        finally:
            if self._batches.get(key) is batch:
                del self._batches[key]
            for answers in batch.answers.values():  # only if cancelled, at shutdown
                for answer in answers:
                    answer.cancel()

    async def _ask(self, key: tuple[Identity, str], batch: _Batch) -> None:
        identity, application_id = key
        pinpoint = Pinpoint(self._aws.client("pinpoint", identity))
        async with self._aws.slot(urgent=True):
            del self._batches[key]  # polls from here on wait for the next slot, together
            missing = set(batch.answers)
            if len(missing) > 1:
                try:
                    await self._list(pinpoint, key, batch, missing)
                except Exception as error:
                    if classify(error, "GetExportJobs").transient:
                        # Throttled, say: each GetExportJob would be too. The exports back off.
                        for answers in batch.answers.values():
                            _fail(answers, error)
                        return
                    # Refused (a policy without the listing?): those not found asked alone.
            alone = [job_id for job_id in batch.answers if job_id in missing]
            if len(alone) == 1:
                await self._get(pinpoint, application_id, alone[0], batch.answers[alone[0]])
                return
        await asyncio.gather(
            *(
                self._get(pinpoint, application_id, job_id, batch.answers[job_id], queue=True)
                for job_id in alone
            )
        )

    async def _list(
        self,
        pinpoint: Pinpoint,
        key: tuple[Identity, str],
        batch: _Batch,
        missing: set[str],
    ) -> None:
        """Answer the polls of `missing` from the application's listing, page by page (a poll
        does not wait for the pages after its job's); `missing` keeps the jobs not found.

        Newest first, so the listing stops at the first page whose jobs are all older than the
        oldest wanted job (if every creation is known). It also stops once it has read as many
        pages as jobs are still missing: asked alone, they cost no more calls than that."""
        identity, application_id = key
        oldest = batch.oldest()
        token: str | None = None
        pages = 0
        while pages < len(missing):
            jobs, token = await self._aws.call(pinpoint.export_jobs_page, application_id, token)
            pages += 1
            for job in jobs:
                if job.id in missing:
                    missing.discard(job.id)
                    _give(batch.answers[job.id], job, "GetExportJobs")
                elif job.job_status in PINPOINT_ENDED:
                    self._saw_end(identity, application_id, job)
            if not token or (
                oldest and jobs and all(created_before(j.creation_date, oldest) for j in jobs)
            ):
                return

    def _saw_end(self, identity: Identity, application_id: str, job: ExportJob) -> None:
        """A listing made as `identity` shows a job ended: its export, between polls, is woken."""
        waiter = self._waiters.get((application_id, job.id))
        watch = self._watches.get(waiter) if waiter else None
        if waiter and watch and watch.identity == identity and watch.ended is None:
            watch.ended = job
            self._wake(waiter)

    async def _get(
        self,
        pinpoint: Pinpoint,
        application_id: str,
        job_id: str,
        answers: list[Answer],
        queue: bool = False,
    ) -> None:
        """One GetExportJob; `queue`: for a slot of its own (else within the caller's)."""
        try:
            async with self._aws.slot(urgent=True) if queue else contextlib.nullcontext():
                job = await self._aws.call(pinpoint.get_export_job, application_id, job_id)
        except Exception as error:
            _fail(answers, error)
        else:
            _give(answers, job, "GetExportJob")


# A poll given up on meanwhile (its export deleted, say) has no answer to take.


def _give(answers: list[Answer], job: ExportJob, answered_by: str) -> None:
    for answer in answers:
        if not answer.done():
            answer.set_result(job)
            metrics.JOB_POLLS.labels(answered_by).inc()


def _fail(answers: list[Answer], error: Exception) -> None:
    for answer in answers:
        if not answer.done():
            answer.set_exception(error)
