"""Checks on the bytes as they stream past: count, sha256, a full gzip decode, and its lines.

Decoding to the end is what proves a piece whole: the decoder checks each member's CRC-32 and
length (written by the producer, so the check is end to end), and a stream cut anywhere, even at
a block boundary, never reaches the end of its last member. The inflate is ISA-L's (`isal`, a
few times faster than zlib on endpoint NDJSON), or zlib's where the wheel is missing (`INFLATE`
says which); both check the trailer, release the GIL while they inflate, and refuse what the
other refuses (reserved header flags are checked here, as ISA-L ignores them). Output is
produced in bounded slices, so a gzip bomb costs time, never memory. The newlines of the
decoded output are counted on the way: one line is one endpoint. StringZilla's SIMD count
(`stringzilla`) does it at several GB/s; without that wheel, a loop of `find` (`LINE_COUNT`
says which), which holds the GIL, so that the transfers wait while it counts.
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
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from isal.igzip_lib import IgzipDecompressor

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not zlib's
BLOCK = 512 << 10  # read and write size: a few of these per thread is all the memory used
DECODED_SLICE = 256 << 10  # decoded output per step: stays in cache, and bounds a gzip bomb
_RESERVED_FLAGS = 0xE0  # gzip FLG bits 5-7: must be zero (RFC 1952)
_FLAGS_AT = 3  # ID1, ID2, CM, then FLG
SHORT_LINE = 128  # below this average line length, lines are counted byte by byte

Sink = Callable[[bytes], None]

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


class InvalidGzip(ValueError):
    pass


@dataclass(frozen=True)
class Digest:
    bytes: int
    sha256: str
    lines: int | None = None  # newlines in the decoded content (of a .gz: its endpoints)


class Hasher:
    """Byte count and sha256 of everything fed to it."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.count = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self.count += len(data)

    def digest(self, lines: int | None = None) -> Digest:
        return Digest(self.count, self._sha256.hexdigest(), lines)


def find_lines(data: bytes) -> int:
    """The newlines in `data`, without StringZilla. Each is found with memchr from the one
    before, which is fast on lines of hundreds of bytes (endpoints); after one find per
    SHORT_LINE bytes, the rest is counted byte by byte, so that short lines cost at most about
    twice a plain count."""
    find = data.find
    at = 0  # just past the last newline found
    finds = len(data) // SHORT_LINE
    for lines in range(finds):
        at = find(10, at) + 1
        if not at:
            return lines
    return finds + data.count(10, at)


def _line_counters() -> dict[str, Callable[[bytes], int]]:
    """The newline counters at hand, the fastest first."""
    counters: dict[str, Callable[[bytes], int]] = {}
    try:
        import stringzilla
    except ImportError:  # no wheel for this platform: the find loop counts, more slowly
        pass
    else:
        counters["stringzilla"] = lambda data: stringzilla.count(data, b"\n")
    counters["find"] = find_lines
    return counters


LINE_COUNTERS = _line_counters()
LINE_COUNT = next(iter(LINE_COUNTERS))  # the one used: "stringzilla", or "find" without it
count_lines = LINE_COUNTERS[LINE_COUNT]


class _Member(Protocol):
    """One gzip member's decoder, as bz2's: feed input only when `more` is false."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def more(self) -> bool:
        """Output is pending without more input."""
        ...

    def decompress(self, data: bytes, max_length: int) -> bytes: ...


class _IsalMember:
    """ISA-L parses the header and checks the trailer's CRC-32 and length (IsalError)."""

    def __init__(self, inflate: IgzipDecompressor) -> None:
        self._inflate = inflate

    @property
    def eof(self) -> bool:
        return self._inflate.eof

    @property
    def unused_data(self) -> bytes:
        return self._inflate.unused_data

    @property
    def more(self) -> bool:
        return not self._inflate.needs_input

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._inflate.decompress(data, max_length)


class _ZlibMember:
    """zlib checks the header, and the trailer's CRC-32 and length (zlib.error)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(GZIP_WBITS)
        self._full = False  # the last output filled its slice: more may be pending

    @property
    def eof(self) -> bool:
        return self._inflate.eof

    @property
    def unused_data(self) -> bytes:
        return self._inflate.unused_data

    @property
    def more(self) -> bool:
        return self._full or bool(self._inflate.unconsumed_tail)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._inflate.decompress(data or self._inflate.unconsumed_tail, max_length)
        self._full = len(out) == max_length
        return out


def _decoders() -> dict[str, tuple[Callable[[], _Member], type[Exception]]]:
    """The gzip member decoders at hand, the fastest first, each with its error."""
    decoders: dict[str, tuple[Callable[[], _Member], type[Exception]]] = {}
    try:
        from isal import igzip_lib
    except ImportError:  # no wheel for this platform: zlib decodes, more slowly
        pass
    else:
        decoders["isal"] = (
            lambda: _IsalMember(igzip_lib.IgzipDecompressor(igzip_lib.DECOMP_GZIP)),
            cast("type[Exception]", igzip_lib.IsalError),  # its stub calls it an instance
        )
    decoders["zlib"] = (_ZlibMember, zlib.error)
    return decoders


DECODERS = _decoders()
INFLATE = next(iter(DECODERS))  # the one used: "isal", or "zlib" without the isal wheel
_ERRORS = tuple(error for _, error in DECODERS.values())


class LineCount:
    """A sink that counts the newlines of what passes through it to `sink`."""

    def __init__(self, sink: Sink | None = None) -> None:
        self._sink = sink
        self.lines = 0

    def __call__(self, data: bytes) -> None:
        self.lines += count_lines(data)
        if self._sink is not None:
            self._sink(data)


class Gunzip:
    """Incremental decoder of a (multi-member) gzip stream; `sink` gets the decoded bytes."""

    def __init__(self, sink: Sink | None = None, inflate: str = INFLATE) -> None:
        self._sink = sink
        self._new_member = DECODERS[inflate][0]
        self._member: _Member | None = None
        self._head = b""  # the first bytes of a member, until its flags can be checked
        self.members = 0

    def feed(self, data: bytes) -> None:
        try:
            self._decode(data)
        except _ERRORS as error:
            raise InvalidGzip(f"member {self.members + 1}: {error}") from None

    def _decode(self, data: bytes) -> None:
        while True:
            if self._member is None:
                data = self._head + data
                if len(data) <= _FLAGS_AT:
                    self._head = data
                    return
                self._head = b""
                if data[_FLAGS_AT] & _RESERVED_FLAGS and data[:2] == b"\x1f\x8b":
                    raise InvalidGzip(f"member {self.members + 1}: reserved header flags set")
                self._member = self._new_member()
            member = self._member
            out = member.decompress(data, DECODED_SLICE)
            data = b""
            if out and self._sink is not None:
                self._sink(out)
            if member.eof:  # CRC and length checked; what follows must be another member
                self._member = None
                self.members += 1
                data = member.unused_data
            elif not member.more:
                return

    def close(self) -> None:
        """Raise unless the stream ended exactly at the end of a member."""
        if self._member is not None or self._head:
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
    """Count, sha256, decode and lines of a `.gz` stream fed in order; a context manager.

    Hashing and decoding are both sequential, and each releases the GIL: decoding (with the
    line count) runs on its own thread, beside the hashing, so an object's verification takes
    as long as its decode. A decode error is kept rather than raised, so the download still
    completes: a complete file is what lets the caller tell an object broken in S3 from a
    broken transfer.
    """

    def __init__(self, plain_sink: Sink | None = None) -> None:
        self._hasher = Hasher()
        self._lines = LineCount(plain_sink)
        self._gunzip = Gunzip(self._lines)
        self._decoder = _Worker(self._gunzip.feed, "gunzip")

    def feed(self, data: bytes) -> None:
        self._decoder.put(data)
        self._hasher.update(data)

    def finish(self) -> Digest:
        """The digest (and decoded lines) of a stream that decoded to its end; raises
        InvalidGzip otherwise."""
        self._decoder.join()
        if self._decoder.error is not None:
            raise self._decoder.error
        self._gunzip.close()
        return self._hasher.digest(self._lines.lines)

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
