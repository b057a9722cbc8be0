"""Verification of a streamed .gz: complete members only, bounded output, errors kept."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinpoint_export_operator.copier.verify import (
    BLOCK,
    DECODED_SLICE,
    Gunzip,
    GzipCheck,
    InvalidGzip,
    etag_md5,
    file_md5,
    read_blocks,
)

LINES = b"".join(b'{"Id":"%d","ChannelType":"EMAIL"}\n' % i for i in range(2000))
STREAM = gzip.compress(LINES[:30000]) + gzip.compress(LINES[30000:])  # two members


def decode(data: bytes, cuts: list[int]) -> bytes:
    out: list[bytes] = []
    gunzip = Gunzip(out.append)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        gunzip.feed(data[start:end])
    gunzip.close()
    return b"".join(out)


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0), max_size=8))
def test_any_split_of_a_multi_member_stream_decodes(cuts: list[int]) -> None:
    assert decode(STREAM, cuts) == LINES


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=len(STREAM) - 1))
def test_every_truncation_is_detected(length: int) -> None:
    with pytest.raises(InvalidGzip):
        decode(STREAM[:length], [length // 2])


@pytest.mark.parametrize(
    "data",
    [
        STREAM + b"garbage",
        STREAM + b"\0\0\0\0",
        STREAM[:-5] + bytes([STREAM[-5] ^ 1]) + STREAM[-4:],  # CRC
        STREAM[:-1] + bytes([STREAM[-1] ^ 1]),  # length
        b"not gzip at all",
        zlib.compress(LINES),  # zlib framing, not gzip
    ],
    ids=["trailing-garbage", "zero-padding", "bad-crc", "bad-length", "not-gzip", "zlib"],
)
def test_damaged_streams_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidGzip):
        decode(data, [])


def test_a_bomb_is_decoded_in_bounded_slices() -> None:
    bomb = gzip.compress(bytes(64 * BLOCK), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    sizes: list[int] = []
    gunzip = Gunzip(lambda out: sizes.append(len(out)))
    gunzip.feed(bomb)
    gunzip.close()
    assert sum(sizes) == 64 * BLOCK and max(sizes) <= DECODED_SLICE


def test_check_keeps_hashing_after_a_decode_error_and_reports_it_at_the_end() -> None:
    data = STREAM[:100] + b"\xff" * 1000 + STREAM[1100:]
    check = GzipCheck()
    check.feed(data[:500])
    check.feed(data[500:])
    with pytest.raises(InvalidGzip):
        check.finish()
    assert check._hasher.digest().sha256 == hashlib.sha256(data).hexdigest()


def test_check_digest_and_decoded_output() -> None:
    out: list[bytes] = []
    check = GzipCheck(out.append)
    check.feed(STREAM)
    digest = check.finish()
    assert digest.bytes == len(STREAM)
    assert digest.sha256 == hashlib.sha256(STREAM).hexdigest()
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
