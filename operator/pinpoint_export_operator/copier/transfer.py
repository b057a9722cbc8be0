"""Concurrent ranged GETs written straight into a file, read back in order for verification.

Each object is cut into parts; the parts are fetched by a shared pool of threads, each streaming
its response BLOCK by BLOCK into the file with `pwrite` at its offset. No part is ever held in
memory, so memory is (threads x BLOCK) whatever the object size. Meanwhile the caller consumes
the object in order, block by block as soon as each is written (each part says how far it has
got), by reading it back from the page cache: verification trails the download by a block or
so instead of waiting for whole parts.

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


class _Part:
    """Bytes [start, end) of an object: how far its fetch has written them, for the consumer
    that follows it."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._written = start  # [start, written) is in the file
        self._finished = False  # the fetch returned or failed: no more will come
        self._changed = threading.Condition()

    def advance(self, written: int) -> None:
        with self._changed:
            self._written = written
            self._changed.notify()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify()

    def wait_beyond(self, offset: int) -> int:
        """How far the part is written, once beyond `offset` or finished."""
        with self._changed:
            while self._written <= offset and not self._finished:
                self._changed.wait()
            return self._written


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
        parts = [_Part(start, end) for start, end in split(obj.size, self._part_size)]
        futures = [self._pool.submit(self._fetch, obj, fd, part, stop) for part in parts]
        try:
            for future, part in zip(futures, parts, strict=True):
                consumed = part.start
                while consumed < part.end:
                    written = part.wait_beyond(consumed)
                    if written == consumed:  # the fetch ended short: say why
                        future.result()
                        raise TransferError(obj.key, f"part ended at byte {written}")
                    read_blocks(fd, consumed, written, consume)
                    consumed = written
                start_writeback(fd, part.start, part.end - part.start)
        except BaseException:
            # The caller closes `fd` next: no fetch may still be writing to it (or to whatever
            # file reuses its number).
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)
            raise

    def _fetch(self, obj: S3Object, fd: int, part: _Part, stop: threading.Event) -> None:
        try:
            self._fetch_part(obj, fd, part, stop)
        finally:
            part.finish()

    def _fetch_part(self, obj: S3Object, fd: int, part: _Part, stop: threading.Event) -> None:
        written, end = part.start, part.end  # bytes before `written` are in the file
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
                        part.advance(written)
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
