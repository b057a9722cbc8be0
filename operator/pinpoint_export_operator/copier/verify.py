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
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not zlib's
BLOCK = 1 << 20  # read and decode slice: memory per stream stays around a few MiB

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
            out = member.decompress(data, BLOCK)
            if out and self._sink is not None:
                self._sink(out)
            if member.eof:  # CRC and length checked; what follows must be another member
                self._member = None
                self.members += 1
                data = member.unused_data
            elif member.unconsumed_tail or len(out) == BLOCK:
                data = member.unconsumed_tail  # more output pending: keep draining
            else:
                return

    def close(self) -> None:
        """Raise unless the stream ended exactly at the end of a member."""
        if self._member is not None:
            raise InvalidGzip(f"truncated: member {self.members + 1} does not end")
        if self.members == 0:
            raise InvalidGzip("empty: no gzip member")


class GzipCheck:
    """Count, sha256 and decode of a `.gz` stream fed in order.

    A decode error is kept rather than raised, so the download still completes: a complete
    file is what lets the caller tell an object broken in S3 from a broken transfer.
    """

    def __init__(self, plain_sink: Sink | None = None) -> None:
        self._hasher = Hasher()
        self._gunzip = Gunzip(plain_sink)
        self._error: InvalidGzip | None = None

    def feed(self, data: bytes) -> None:
        self._hasher.update(data)
        if self._error is None:
            try:
                self._gunzip.feed(data)
            except InvalidGzip as error:
                self._error = error

    def finish(self) -> Digest:
        """The digest of a stream that decoded to its end; raises InvalidGzip otherwise."""
        if self._error is not None:
            raise self._error
        self._gunzip.close()
        return self._hasher.digest()


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
