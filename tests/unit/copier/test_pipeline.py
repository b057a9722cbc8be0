"""One copy run against an in-memory bucket: expected objects, completed runs, errors' keys."""

from __future__ import annotations

import errno
import gzip
import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pinpoint_export_operator.copier.exitcodes import (
    CUT_MARK,
    PERMANENT,
    RETRYABLE,
    CopyError,
    classify,
)
from pinpoint_export_operator.copier.layout import LATEST
from pinpoint_export_operator.copier.manifest import MANIFEST, SUCCESS
from pinpoint_export_operator.copier.pipeline import Options, copy_run
from pinpoint_export_operator.copier.source import parse_s3_url

from .fake_s3 import PREFIX, SOURCE, FakeS3, client_error, piece


def options(dest: Path, expect_objects: int | None = None) -> Options:
    return Options(parse_s3_url(SOURCE), dest, expect_objects=expect_objects)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry below `root` with its mode and mtime: what "untouched" compares."""
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(("listed", "expected"), [(2, 3), (0, 1)])
def test_fewer_objects_than_expected_fail_retryably_and_publish_nothing(
    tmp_path: Path, listed: int, expected: int
) -> None:
    run_dir = tmp_path / "nightly" / "run-1"

    with pytest.raises(CopyError) as raised:
        copy_run(FakeS3(listed).client, options(run_dir, expect_objects=expected))

    outcome = classify(raised.value)
    assert (outcome.code, outcome.reason) == (RETRYABLE, "IncompleteListing")
    assert f"listed {listed} " in outcome.message and f"at least {expected}:" in outcome.message
    assert not run_dir.exists() and not (run_dir.parent / LATEST).exists()


@pytest.mark.parametrize(("listed", "expected"), [(0, 0), (2, 2), (3, 2)])
def test_as_many_objects_as_expected_or_more_are_copied(
    tmp_path: Path, listed: int, expected: int
) -> None:
    result = copy_run(FakeS3(listed).client, options(tmp_path / "run-1", expected))
    assert result.objects == listed
    assert os.readlink(tmp_path / LATEST) == "run-1"


def test_each_file_records_its_lines_and_the_totals_the_endpoints(tmp_path: Path) -> None:
    s3 = FakeS3(2)
    s3.put(PREFIX + "more.gz", gzip.compress(b'{"Id":"a"}\n{"Id":"b"}\n{"Id":"c"}\n'))
    source = parse_s3_url(SOURCE)

    result = copy_run(s3.client, Options(source, tmp_path / "run-1", decompress=True))

    lines = {entry["name"]: entry["lines"] for entry in result.manifest["files"]}
    assert lines == {"0.gz": 1, "0.jsonl": 1, "1.gz": 1, "1.jsonl": 1, "more.gz": 3,
                     "more.jsonl": 3}  # fmt: skip
    assert result.manifest["totals"]["lines"] == 5  # the .jsonl files repeat their .gz


def test_a_completed_run_is_reported_as_recorded_and_left_untouched(tmp_path: Path) -> None:
    s3 = FakeS3(2)
    run_dir = tmp_path / "run-1"
    first = copy_run(s3.client, options(run_dir))
    manifest_before = (run_dir / MANIFEST).read_bytes()
    before = tree(tmp_path)
    del s3.objects[f"{PREFIX}1.gz"]  # expired since: a new listing would find one object
    s3.calls.clear()

    again = copy_run(s3.client, options(run_dir, expect_objects=2))

    assert s3.calls == []  # nothing listed, fetched or verified again
    assert (again.manifest, again.objects, again.resumed) == (first.manifest, 2, 2)
    assert again.already_complete and not first.already_complete
    assert (run_dir / MANIFEST).read_bytes() == manifest_before
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    "damage",
    [
        lambda run_dir: (run_dir / SUCCESS).unlink(),  # a killed run: resumed
        lambda run_dir: (run_dir / MANIFEST).write_text('{"version": 1}'),
        lambda run_dir: (run_dir / MANIFEST).write_text(
            (run_dir / MANIFEST).read_text().replace('"files": 2', '"files": 3')
        ),
    ],
    ids=["no-success", "not-a-manifest", "totals-do-not-add-up"],
)
def test_a_run_is_complete_only_with_success_and_a_valid_manifest(
    tmp_path: Path, damage: Callable[[Path], object]
) -> None:
    s3 = FakeS3(2)
    run_dir = tmp_path / "run-1"
    first = copy_run(s3.client, options(run_dir))
    damage(run_dir)
    again = copy_run(s3.client, options(run_dir))
    assert not again.already_complete and again.resumed == 2
    assert json.loads((run_dir / MANIFEST).read_text()) == first.manifest


def test_a_completed_run_takes_latest_from_an_older_run_only(tmp_path: Path) -> None:
    s3 = FakeS3(1)
    for name in ("run-1", "run-2"):
        copy_run(s3.client, options(tmp_path / name))
    copy_run(s3.client, options(tmp_path / "run-1"))  # a late rerun of the older run
    assert os.readlink(tmp_path / LATEST) == "run-2"
    os.unlink(tmp_path / LATEST)
    copy_run(s3.client, options(tmp_path / "run-1"))
    assert os.readlink(tmp_path / LATEST) == "run-1"


def test_a_completed_run_with_fewer_objects_than_expected_does_not_take_latest(
    tmp_path: Path,
) -> None:
    copy_run(FakeS3().client, options(tmp_path / "run-1"))  # listed as empty, not checked
    os.unlink(tmp_path / LATEST)
    again = copy_run(FakeS3().client, options(tmp_path / "run-1", expect_objects=1))
    assert again.already_complete and again.objects == 0
    assert not (tmp_path / LATEST).exists()


KEY = f"{PREFIX}0.gz"


def get_fails(error: Exception) -> Callable[[FakeS3], None]:
    return lambda s3: s3.failures.update({KEY: error})


@pytest.mark.parametrize(
    ("arrange", "code", "reason"),
    [
        (get_fails(client_error("PreconditionFailed", 412)), RETRYABLE, "PreconditionFailed"),
        (get_fails(client_error("AccessDenied", 403)), PERMANENT, "AccessDenied"),
        (get_fails(ConnectionResetError(errno.ECONNRESET, "reset")), RETRYABLE, "IOError"),
        (lambda s3: s3.put(KEY, b"not gzip at all"), PERMANENT, "CorruptObject"),
        (lambda s3: s3.short_bodies.add(KEY), RETRYABLE, "TransferError"),
    ],
    ids=["changed", "denied", "reset", "corrupt", "short-body"],
)
def test_an_error_about_one_object_names_its_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arrange: Callable[[FakeS3], None],
    code: int,
    reason: str,
) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 0.0)  # no waits between retries
    s3 = FakeS3(2)
    arrange(s3)

    with pytest.raises(Exception) as raised:
        copy_run(s3.client, options(tmp_path / "run-1"))

    outcome = classify(raised.value)
    assert (outcome.code, outcome.reason) == (code, reason)
    assert outcome.message.startswith(repr(KEY) + ": ")
    assert not (tmp_path / "run-1" / SUCCESS).exists()


def test_a_long_hostile_key_is_shown_escaped_and_cut(tmp_path: Path) -> None:
    key = PREFIX + "x" * 900 + "\n\x1b[31m.gz"
    s3 = FakeS3()
    s3.put(key, piece(0))
    s3.failures[key] = client_error("NoSuchKey", 404)

    with pytest.raises(Exception) as raised:
        copy_run(s3.client, options(tmp_path / "run-1"))

    message = classify(raised.value).message
    assert len(message) <= 520 and CUT_MARK in message
    assert "\n" not in message and "\x1b" not in message
    assert message.startswith(f"'{PREFIX}xxx") and "xx\\n\\x1b[31m.gz': " in message
