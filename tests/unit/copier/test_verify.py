"""Verification of a streamed .gz: complete members only, bounded output, errors kept, lines.

The decoding tests run with each decoder at hand (ISA-L's and zlib's), so the fallback refuses
exactly what the fast path refuses; the line tests with each line counter (StringZilla's and the
find loop).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinpoint_export_operator.copier.verify import (
    BLOCK,
    DECODED_SLICE,
    DECODERS,
    INFLATE,
    LINE_COUNT,
    LINE_COUNTERS,
    SHORT_LINE,
    Gunzip,
    GzipCheck,
    InvalidGzip,
    LineCount,
    etag_md5,
    file_md5,
    read_blocks,
)

LINES = b"".join(b'{"Id":"%d","ChannelType":"EMAIL"}\n' % i for i in range(2000))
STREAM = gzip.compress(LINES[:30000]) + gzip.compress(LINES[30000:])  # two members
decoders = pytest.mark.parametrize("inflate", list(DECODERS))
counters = pytest.mark.parametrize("counter", list(LINE_COUNTERS))


def decode(data: bytes, cuts: list[int], inflate: str = INFLATE) -> bytes:
    out: list[bytes] = []
    lines = LineCount(out.append)
    gunzip = Gunzip(lines, inflate)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        gunzip.feed(data[start:end])
    gunzip.close()
    assert lines.lines == b"".join(out).count(b"\n")
    return b"".join(out)


def test_isal_decodes_here() -> None:
    assert INFLATE == "isal" and list(DECODERS) == ["isal", "zlib"]


@decoders
@settings(max_examples=50)
@given(cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_any_split_of_a_multi_member_stream_decodes(inflate: str, cuts: list[int]) -> None:
    assert decode(STREAM, cuts, inflate) == LINES


@decoders
@settings(max_examples=50)
@given(length=st.integers(min_value=0, max_value=len(STREAM) - 1))
def test_every_truncation_is_detected(inflate: str, length: int) -> None:
    with pytest.raises(InvalidGzip):
        decode(STREAM[:length], [length // 2], inflate)


def with_flags(member: bytes, flags: int) -> bytes:
    return member[:3] + bytes([flags]) + member[4:]


def with_trailer(member: bytes, crc: int | None = None, size: int | None = None) -> bytes:
    """`member` with its trailer's CRC-32 or length (ISIZE) replaced."""
    old_crc, old_size = struct.unpack("<II", member[-8:])
    new = struct.pack("<II", old_crc if crc is None else crc, old_size if size is None else size)
    return member[:-8] + new


ONE = gzip.compress(LINES)
CRC, SIZE = struct.unpack("<II", ONE[-8:])


@decoders
@pytest.mark.parametrize(
    "data",
    [
        STREAM + b"garbage",
        STREAM + b"\0\0\0\0",
        STREAM + b"\x1f\x8b",  # the start of a member that never comes
        STREAM[:-5] + bytes([STREAM[-5] ^ 1]) + STREAM[-4:],  # CRC
        STREAM[:-1] + bytes([STREAM[-1] ^ 1]),  # length
        with_trailer(ONE, crc=CRC ^ 0x80000000),
        with_trailer(ONE, size=SIZE + 1),
        with_trailer(ONE, size=SIZE + (1 << 31)),
        with_flags(ONE, 0x20),  # a reserved FLG bit (zlib refuses it, ISA-L does not look)
        with_flags(ONE, 0x80) + ONE,
        ONE + with_flags(ONE, 0x40),  # in a later member
        b"not gzip at all",
        zlib.compress(LINES),  # zlib framing, not gzip
    ],
    ids=["trailing-garbage", "zero-padding", "half-a-header", "bad-crc", "bad-length",
         "crc-high-bit", "length-plus-one", "length-high-bit", "reserved-flag",
         "reserved-flag-first", "reserved-flag-later", "not-gzip", "zlib"],
)  # fmt: skip
def test_damaged_streams_are_refused(inflate: str, data: bytes) -> None:
    with pytest.raises(InvalidGzip):
        decode(data, [], inflate)
    with pytest.raises(InvalidGzip):
        decode(data, [3, 4, len(data) - 5], inflate)  # the header and trailer cut up


@decoders
def test_a_bomb_is_decoded_in_bounded_slices(inflate: str) -> None:
    bomb = gzip.compress(bytes(64 * BLOCK), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    sizes: list[int] = []
    gunzip = Gunzip(lambda out: sizes.append(len(out)), inflate)
    gunzip.feed(bomb)
    gunzip.close()
    assert sum(sizes) == 64 * BLOCK and max(sizes) <= DECODED_SLICE


def test_the_fastest_line_counter_is_used() -> None:
    assert LINE_COUNT == "stringzilla" and list(LINE_COUNTERS) == ["stringzilla", "find"]


@counters
@settings(max_examples=200)
@given(st.lists(st.sampled_from([b"\n", b"x", b"{}" * 100, b"y" * 300]), max_size=400))
def test_lines_are_the_newlines_whatever_their_length(counter: str, parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert LINE_COUNTERS[counter](data) == data.count(b"\n")


@counters
@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"no newline", b"\n" * (4 * SHORT_LINE + 1), b"a\n" * 1000, b"x" * 5000 + b"\n"],
)
def test_lines_at_the_edges(counter: str, data: bytes) -> None:
    assert LINE_COUNTERS[counter](data) == data.count(b"\n")


def test_lines_of_a_stream_without_a_final_newline() -> None:
    out: list[bytes] = []
    with GzipCheck(out.append) as check:
        check.feed(gzip.compress(b"a\nb\nc") + gzip.compress(b"\n\nd" * 100_000))
        assert check.finish().lines == 2 + 200_000
    assert b"".join(out) == b"a\nb\nc" + b"\n\nd" * 100_000


FALLBACK = """
import gzip, struct, sys
sys.modules["isal"] = None  # as if no wheel were installed: `import isal` fails
sys.modules["stringzilla"] = None  # nor StringZilla's: the find loop counts
from pinpoint_export_operator.copier import verify
assert verify.INFLATE == "zlib" and list(verify.DECODERS) == ["zlib"], verify.DECODERS
assert verify.LINE_COUNT == "find" and list(verify.LINE_COUNTERS) == ["find"]
data = gzip.compress(b"{}\\n" * 1000)
check = verify.GzipCheck()
check.feed(data)
assert check.finish().lines == 1000
crc, size = struct.unpack("<II", data[-8:])
broken = verify.GzipCheck()
broken.feed(data[:-8] + struct.pack("<II", crc ^ 1, size))
try:
    broken.finish()
except verify.InvalidGzip as error:
    print("refused:", error)
"""


def test_without_the_wheels_zlib_decodes_the_loop_counts_and_the_crc_is_checked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith("refused: member 1: Error -3 "), result.stdout
    assert result.stdout.rstrip().endswith("incorrect data check")  # zlib's CRC mismatch


def test_check_keeps_hashing_after_a_decode_error_and_reports_it_at_the_end() -> None:
    data = STREAM[:100] + b"\xff" * 1000 + STREAM[1100:]
    check = GzipCheck()
    check.feed(data[:500])
    check.feed(data[500:])
    with pytest.raises(InvalidGzip):
        check.finish()
    assert check._hasher.digest().sha256 == hashlib.sha256(data).hexdigest()


def test_check_digest_lines_and_decoded_output() -> None:
    out: list[bytes] = []
    check = GzipCheck(out.append)
    check.feed(STREAM)
    digest = check.finish()
    assert digest.bytes == len(STREAM)
    assert digest.sha256 == hashlib.sha256(STREAM).hexdigest()
    assert digest.lines == 2000
    assert b"".join(out) == LINES


def test_empty_input_is_not_a_gzip_file() -> None:
    with pytest.raises(InvalidGzip, match="empty"):
        GzipCheck().finish()


def test_reading_back_a_file(tmp_path: Path) -> None:
    data = os.urandom(3 * BLOCK + 7)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks: list[bytes] = []
        read_blocks(fd, 5, len(data), blocks.append)
        assert b"".join(blocks) == data[5:] and max(map(len, blocks)) <= BLOCK
        assert file_md5(fd, len(data)) == hashlib.md5(data).hexdigest()
        with pytest.raises(OSError):
            read_blocks(fd, 0, len(data) + 1, blocks.append)
    finally:
        os.close(fd)


def test_only_single_part_etags_carry_an_md5() -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    assert etag_md5(f'"{md5}"') == md5 == etag_md5(md5)
    assert etag_md5(f'"{md5}-3"') is None  # multipart
    assert etag_md5("") is None


def test_a_failing_sink_is_reported_at_the_end() -> None:
    def full_disk(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    with GzipCheck(full_disk) as check:
        check.feed(STREAM)
        with pytest.raises(OSError, match="No space"):
            check.finish()


def test_an_abandoned_check_stops_its_decoder() -> None:
    with pytest.raises(RuntimeError), GzipCheck() as check:
        check.feed(STREAM[:1000])
        raise RuntimeError("the download failed")
    assert not check._decoder._thread.is_alive()
