"""The free-space check: fails at once, permanently, before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pinpoint_export_operator.copier.exitcodes import PERMANENT, CopyError, classify
from pinpoint_export_operator.copier.pipeline import Options, copy_run
from pinpoint_export_operator.copier.source import parse_s3_url
from pinpoint_export_operator.copier.space import Statvfs, human

from .fake_s3 import PREFIX, SOURCE, FakeS3


def free(available: int) -> tuple[list[str], Statvfs]:
    """A statvfs that reports `available` bytes free, and the paths it was asked about."""
    asked: list[str] = []

    def statvfs(path: str) -> os.statvfs_result:
        asked.append(path)
        return os.statvfs_result((4096, 1, 1 << 40, available, available, 0, 0, 0, 0, 255))

    return asked, statvfs


def test_human_sizes() -> None:
    assert [human(n) for n in (0, 1023, 1536, 5 << 30)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]


@pytest.mark.parametrize("decompress", [False, True])
def test_too_little_space_fails_permanently_before_writing(
    tmp_path: Path, decompress: bool
) -> None:
    s3 = FakeS3(2)
    size = sum(len(data) for data in s3.objects.values())
    asked, statvfs = free(size * (10 if decompress else 1) - 1)
    dest = tmp_path / "nightly" / "run-1"

    with pytest.raises(CopyError) as raised:
        copy_run(s3.client, Options(parse_s3_url(SOURCE), dest, decompress=decompress), statvfs)

    outcome = classify(raised.value)
    assert (outcome.code, outcome.reason) == (PERMANENT, "InsufficientSpace")
    needed = size * (10 if decompress else 1)
    assert f"needs {'an estimated ' if decompress else ''}{needed} bytes" in outcome.message
    assert f"only {needed - 1} bytes" in outcome.message
    assert ("estimated" in outcome.message) == decompress
    assert asked == [str(tmp_path)]  # the nearest directory that exists
    assert list(tmp_path.iterdir()) == []


def test_enough_space_copies_and_a_resume_needs_only_what_is_missing(tmp_path: Path) -> None:
    s3 = FakeS3(2)
    options = Options(parse_s3_url(SOURCE), tmp_path / "run-1")
    copy_run(s3.client, options, free(sum(len(data) for data in s3.objects.values()))[1])
    (tmp_path / "run-1" / "_SUCCESS").unlink()
    (tmp_path / "run-1" / "1.gz").unlink()

    result = copy_run(s3.client, options, free(len(s3.objects[f"{PREFIX}1.gz"]))[1])

    assert (result.resumed, (tmp_path / "run-1" / "_SUCCESS").exists()) == (1, True)
