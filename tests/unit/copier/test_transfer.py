"""Ranged GETs into a file, consumed in order as each block lands (not as each part ends)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pinpoint_export_operator.copier.source import S3Object
from pinpoint_export_operator.copier.transfer import Downloader, TransferError
from pinpoint_export_operator.copier.verify import BLOCK

from .fake_s3 import BUCKET, PREFIX, FakeS3

KEY = PREFIX + "0.gz"
DATA = os.urandom(6 * BLOCK + 1000)  # more blocks than a part's attempts
ETAG = f'"{hashlib.md5(DATA).hexdigest()}"'


@pytest.fixture(autouse=True)
def no_waits_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("random.uniform", lambda low, high: 0.0)


class HeldBody(io.BytesIO):
    """A body that sends its first block, then waits for `go` before the rest, or breaks."""

    def __init__(self, data: bytes, go: threading.Event, *, breaks: bool = False) -> None:
        super().__init__(data)
        self._go, self._breaks, self._sent = go, breaks, 0

    def read(self, size: int | None = -1) -> bytes:
        if self._sent:
            if self._breaks:
                raise ConnectionResetError("reset by peer (injected)")
            assert self._go.wait(10), "the first block was never consumed"
        data = super().read(size)
        self._sent += len(data)
        return data


class HeldS3(FakeS3):
    def __init__(self, go: threading.Event, *, breaks: bool = False) -> None:
        super().__init__()
        self.put(KEY, DATA)
        self._go, self._breaks = go, breaks

    def get_object(self, **params: Any) -> dict[str, Any]:
        response = super().get_object(**params)
        response["Body"] = HeldBody(response["Body"].read(), self._go, breaks=self._breaks)
        return response


def download(s3: FakeS3, tmp_path: Path, consume: Any) -> None:
    obj = S3Object(KEY, len(DATA), ETAG)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with ThreadPoolExecutor(1) as pool:
            # One part: consumption must not wait for the part's end.
            Downloader(s3.client, BUCKET, pool, part_size=len(DATA)).download(obj, fd, consume)
    finally:
        os.close(fd)


def test_blocks_are_consumed_as_they_land(tmp_path: Path) -> None:
    go = threading.Event()
    seen: list[bytes] = []

    def consume(data: bytes) -> None:
        seen.append(data)
        go.set()  # the body sends the rest only once its first block was consumed

    download(HeldS3(go), tmp_path, consume)

    assert b"".join(seen) == DATA == (tmp_path / "f").read_bytes()
    assert len(seen[0]) == BLOCK


def test_a_part_broken_midway_is_resumed_where_it_stopped(tmp_path: Path) -> None:
    s3 = HeldS3(threading.Event(), breaks=True)
    seen: list[bytes] = []
    with pytest.raises(ConnectionResetError):  # every attempt breaks after one block
        download(s3, tmp_path, seen.append)
    # What was written before each break was consumed, once, in order: never read again.
    assert b"".join(seen) == DATA[: len(b"".join(seen))] and len(b"".join(seen)) >= BLOCK


def test_a_body_that_ends_early_fails_the_transfer(tmp_path: Path) -> None:
    s3 = FakeS3()
    s3.put(KEY, DATA)
    s3.short_bodies.add(KEY)
    seen: list[bytes] = []
    with pytest.raises(TransferError, match="body ended"):
        download(s3, tmp_path, seen.append)
    assert b"".join(seen) == DATA[: len(b"".join(seen))]
