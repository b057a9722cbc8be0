"""Runs export jobs through Pinpoint's statuses, writing their pieces from worker threads."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from pinpoint_export_sandbox.emulator.export import (
    ExportFailed,
    PieceWriter,
    check_role_arn,
    parse_s3_url,
)
from pinpoint_export_sandbox.emulator.faults import FaultInjector
from pinpoint_export_sandbox.emulator.storage import ExportJob

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    step_seconds: float = 0.2  # how long each status lasts (PROCESSING: as long as writing takes)
    piece_size: int = 10_000  # endpoints per .gz piece


class JobRunner:
    def __init__(
        self, writer: PieceWriter, faults: FaultInjector, timing: Timing, workers: int = 4
    ) -> None:
        self.writer = writer
        self.faults = faults
        self.timing = timing
        # A small pool bounds the threads and S3 connections however many jobs run at once.
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="pinpoint-export")
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, job: ExportJob) -> asyncio.Task[None]:
        """Run `job` in the background (called on the event loop by CreateExportJob)."""
        task = asyncio.get_running_loop().create_task(
            self._run(job, self.faults.take_job_failure())
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.cancel()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def _run(self, job: ExportJob, inject_failure: bool) -> None:
        log.info("export job %s created: %s", job.id, job.definition)
        try:
            await self._export(job, inject_failure)
        except ExportFailed as failure:
            self._fail(job, str(failure))
        except Exception as error:  # an emulator bug must still end the job, as a service would
            log.exception("export job %s crashed", job.id)
            self._fail(job, f"Internal error: {error}")
        if job.status == "FAILING":
            await self._step(job)
            self._advance(job)
        log.info(
            "export job %s finished %s: %d/%d pieces, %d endpoints",
            job.id,
            job.status,
            job.completed_pieces,
            job.total_pieces,
            job.total_processed,
        )

    async def _export(self, job: ExportJob, inject_failure: bool) -> None:
        url = parse_s3_url(job.definition["S3UrlPrefix"])  # validated by CreateExportJob
        await self._step(job)  # CREATED
        self._advance(job)  # PREPARING_FOR_INITIALIZATION
        check_role_arn(job.definition["RoleArn"])
        await self._step(job)
        self._advance(job)  # INITIALIZING
        await self._thread(self.writer.check_access, url, job.id)
        total = await self._thread(job.source.count)
        job.total_pieces = max(1, math.ceil(total / self.timing.piece_size))
        await self._step(job)
        self._advance(job)  # PROCESSING
        await self.faults.wait_unfrozen(job.status)
        if inject_failure:
            job.failed_pieces, job.total_failures = job.total_pieces, total
            raise ExportFailed("Export job failed (emulator fault injection)")
        endpoints = iter(job.source)
        for n in range(job.total_pieces):
            piece = itertools.islice(endpoints, self.timing.piece_size)
            try:
                written = await self._thread(self.writer.write_piece, url, job.id, n, piece)
            except ExportFailed:
                job.failed_pieces = job.total_pieces - job.completed_pieces
                raise
            job.completed_pieces += 1
            job.total_processed += written
        self._advance(job)  # COMPLETING
        await self._thread(self.writer.finish, url, job.id)
        await self._step(job)
        self._advance(job)  # COMPLETED

    async def _step(self, job: ExportJob) -> None:
        """Spend the configured time in the current status, and longer while it is frozen."""
        await self.faults.wait_unfrozen(job.status)
        await asyncio.sleep(self.timing.step_seconds)

    @staticmethod
    def _advance(job: ExportJob) -> None:
        log.info("export job %s %s", job.id, job.advance())

    @staticmethod
    def _fail(job: ExportJob, reason: str) -> None:
        log.warning("export job %s failing: %s", job.id, reason)
        job.fail(reason)

    async def _thread(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
