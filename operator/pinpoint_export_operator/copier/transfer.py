"""Concurrent ranged GETs written straight into a file, read back in order for verification.

Each object is cut into parts; the parts are fetched by a shared pool of threads, each streaming
its response BLOCK by BLOCK into the file with `pwrite` at its offset. No part is ever held in
memory, so memory is (threads x BLOCK) whatever the object size. Meanwhile the caller consumes
the parts in order, as each completes, by reading them back from the page cache: verification
overlaps the download instead of following it.

botocore retries a request that fails before its body (connection errors, throttling, 5xx); a
body cut mid-stream is resumed here from the last byte written. Every GET carries If-Match, so
all parts come from the same version of the object.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing
from typing import TYPE_CHECKING

from botocore import exceptions as botocore_errors

from pinpoint_export_operator.copier.exitcodes import ObjectError
from pinpoint_export_operator.copier.layout import start_writeback
from pinpoint_export_operator.copier.source import S3Object
from pinpoint_export_operator.copier.verify import BLOCK, Sink, read_blocks

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

BODY_ATTEMPTS = 5
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


class Aborted(Exception):
    """Another object failed; this transfer stops early (never the reported error)."""


class TransferError(ObjectError):
    reason = "TransferError"


# A response body that breaks mid-stream: worth resuming from where it stopped.
_BODY_ERRORS = (
    botocore_errors.ReadTimeoutError,
    botocore_errors.ResponseStreamingError,
    botocore_errors.IncompleteReadError,
    botocore_errors.ConnectionClosedError,
    ConnectionError,
    TimeoutError,
    TransferError,
)


def split(size: int, part_size: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges covering `size`."""
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class Downloader:
    """Fetches objects' parts on `pool`; `abort` stops every transfer at its next block."""

    def __init__(
        self, client: S3Client, bucket: str, pool: ThreadPoolExecutor, part_size: int
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._pool = pool
        self._part_size = part_size
        self.abort = threading.Event()

    def download(self, obj: S3Object, fd: int, consume: Sink) -> None:
        """Write `obj` into `fd` and feed its bytes to `consume` in order."""
        stop = threading.Event()
        parts = split(obj.size, self._part_size)
        futures = [
            self._pool.submit(self._fetch, obj, fd, start, end, stop) for start, end in parts
        ]
        try:
            for future, (start, end) in zip(futures, parts, strict=True):
                future.result()
                read_blocks(fd, start, end, consume)
                start_writeback(fd, start, end - start)
        except BaseException:
            # The caller closes `fd` next: no fetch may still be writing to it (or to whatever
            # file reuses its number).
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            raise

    def _fetch(self, obj: S3Object, fd: int, start: int, end: int, stop: threading.Event) -> None:
        written = start  # bytes before this are in the file
        for attempt in range(1, BODY_ATTEMPTS + 1):
            try:
                self._check(stop)
                response = self._client.get_object(
                    Bucket=self._bucket,
                    Key=obj.key,
                    Range=f"bytes={written}-{end - 1}",
                    IfMatch=obj.etag,
                )
                _check_range(response.get("ContentRange", ""), written, end, obj)
                with closing(response["Body"]) as body:
                    while written < end:
                        self._check(stop)
                        block = body.read(min(BLOCK, end - written))
                        if not block:
                            raise TransferError(obj.key, f"body ended at byte {written}")
                        _pwrite_all(fd, block, written)
                        written += len(block)
                return
            except _BODY_ERRORS as error:
                if attempt == BODY_ATTEMPTS:
                    raise
                delay = random.uniform(0, min(8.0, 0.25 * 2**attempt))  # full jitter
                log.warning("%s: at byte %d: %s; resuming in %.1fs", obj.key, written, error, delay)
                if stop.wait(delay) or self.abort.is_set():
                    raise Aborted() from error

    def _check(self, stop: threading.Event) -> None:
        if stop.is_set() or self.abort.is_set():
            raise Aborted()


def _check_range(content_range: str, start: int, end: int, obj: S3Object) -> None:
    """The server sent exactly the bytes asked for, of an object of the listed size."""
    match = _CONTENT_RANGE.match(content_range)
    got = tuple(int(g) for g in match.groups()) if match else None
    if got != (start, end - 1, obj.size):
        raise TransferError(
            obj.key, f"asked for bytes {start}-{end - 1} of {obj.size}, got {content_range!r}"
        )
