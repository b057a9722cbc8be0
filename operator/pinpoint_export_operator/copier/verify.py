"""Checks on the bytes as they stream past: count, sha256, and a full gzip decode.

Decoding to the end is what proves a piece whole: zlib checks each member's CRC-32 and length
(written by the producer, so the check is end to end), and a stream cut anywhere, even at a
block boundary, never reaches the end of its last member. Output is produced in bounded slices,
so a gzip bomb costs time, never memory.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not zlib's
BLOCK = 512 << 10  # read and write size: a few of these per thread is all the memory used
DECODED_SLICE = 256 << 10  # decoded output per step: stays in cache, and bounds a gzip bomb

Sink = Callable[[bytes], None]

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


class InvalidGzip(ValueError):
    pass


@dataclass(frozen=True)
class Digest:
    bytes: int
    sha256: str


class Hasher:
    """Byte count and sha256 of everything fed to it."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.count = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self.count += len(data)

    def digest(self) -> Digest:
        return Digest(self.count, self._sha256.hexdigest())


class Gunzip:
    """Incremental decoder of a (multi-member) gzip stream; `sink` gets the decoded bytes."""

    def __init__(self, sink: Sink | None = None) -> None:
        self._sink = sink
        self._member: zlib._Decompress | None = None
        self.members = 0

    def feed(self, data: bytes) -> None:
        try:
            self._decode(data)
        except zlib.error as error:
            raise InvalidGzip(f"member {self.members + 1}: {error}") from None

    def _decode(self, data: bytes) -> None:
        while True:
            if self._member is None:
                if not data:
                    return
                self._member = zlib.decompressobj(GZIP_WBITS)
            member = self._member
            out = member.decompress(data, DECODED_SLICE)
            if out and self._sink is not None:
                self._sink(out)
            if member.eof:  # CRC and length checked; what follows must be another member
                self._member = None
                self.members += 1
                data = member.unused_data
            elif member.unconsumed_tail or len(out) == DECODED_SLICE:
                data = member.unconsumed_tail  # more output pending: keep draining
            else:
                return

    def close(self) -> None:
        """Raise unless the stream ended exactly at the end of a member."""
        if self._member is not None:
            raise InvalidGzip(f"truncated: member {self.members + 1} does not end")
        if self.members == 0:
            raise InvalidGzip("empty: no gzip member")


class _Worker:
    """Runs `consume` on its own thread over the blocks `put` to it, in order.

    The first error is kept and the rest of the stream drained, so the producer never blocks.
    The queue is short: a few blocks of memory.
    """

    def __init__(self, consume: Sink, name: str, depth: int = 2) -> None:
        self._consume = consume
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._consume(data)
                except BaseException as error:
                    self.error = error

    def put(self, data: bytes) -> None:
        self._queue.put(data)

    def join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class GzipCheck:
    """Count, sha256 and decode of a `.gz` stream fed in order; use as a context manager.

    Hashing and decoding are both sequential, and each releases the GIL: decoding runs on its
    own thread, beside the hashing, which halves the time an object's verification takes.
    A decode error is kept rather than raised, so the download still completes: a complete
    file is what lets the caller tell an object broken in S3 from a broken transfer.
    """

    def __init__(self, plain_sink: Sink | None = None) -> None:
        self._hasher = Hasher()
        self._gunzip = Gunzip(plain_sink)
        self._decoder = _Worker(self._gunzip.feed, "gunzip")

    def feed(self, data: bytes) -> None:
        self._decoder.put(data)
        self._hasher.update(data)

    def finish(self) -> Digest:
        """The digest of a stream that decoded to its end; raises InvalidGzip otherwise."""
        self._decoder.join()
        if self._decoder.error is not None:
            raise self._decoder.error
        self._gunzip.close()
        return self._hasher.digest()

    def __enter__(self) -> GzipCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self._decoder.join()  # the decoder may write the plain file: done before it is closed


def read_blocks(fd: int, start: int, end: int, sink: Sink) -> None:
    """Feed bytes [start, end) of a file to `sink`, BLOCK at a time."""
    offset = start
    while offset < end:
        block = os.pread(fd, min(BLOCK, end - offset), offset)
        if not block:
            raise OSError(errno.EIO, f"file ends at {offset}, expected {end} bytes")
        sink(block)
        offset += len(block)


def etag_md5(etag: str) -> str | None:
    """The MD5 an ETag carries, if it is a single-part upload's plain MD5."""
    match = _MD5_ETAG.match(etag)
    return match.group(1) if match else None


def file_md5(fd: int, size: int) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    read_blocks(fd, 0, size, md5.update)
    return md5.hexdigest()
