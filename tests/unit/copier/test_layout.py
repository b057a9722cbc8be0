"""The run directory: atomic files, symlinks planted in it replaced and on its path refused, never
followed, and a `latest` that only moves forward."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pinpoint_export_operator.copier.exitcodes import PERMANENT, classify
from pinpoint_export_operator.copier.layout import LATEST, RunDir


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    sentinel = tmp_path / "outside"
    sentinel.mkdir()
    (sentinel / "target").write_text("untouched")
    return sentinel


def untouched(outside: Path) -> bool:
    return [p.name for p in outside.iterdir()] == ["target"] and (
        outside / "target"
    ).read_text() == "untouched"


def test_a_file_appears_only_when_published(tmp_path: Path) -> None:
    with RunDir(tmp_path / "exports" / "run-1") as run:
        with run.part("a.gz") as part:
            part.write(b"data")
            assert sorted(os.listdir(run.path)) == ["a.gz.part"]
            part.publish()
        with run.part("b.gz") as part:
            part.write(b"abandoned")
        assert sorted(os.listdir(run.path)) == ["a.gz"]
        assert (run.path / "a.gz").read_bytes() == b"data"


def test_planted_symlinks_are_replaced_not_followed(tmp_path: Path, outside: Path) -> None:
    run_path = tmp_path / "run-1"
    run_path.mkdir()
    for name in ("a.gz", "a.gz.part", "manifest.json", "manifest.json.part"):
        (run_path / name).symlink_to(outside / "target")
    with RunDir(run_path) as run:
        assert run.open_complete("a.gz", len("untouched")) is None
        run.write_atomic("a.gz", b"mine")
        run.write_atomic("manifest.json", b"{}")
        run.remove_leftovers()
    assert untouched(outside)
    assert not (run_path / "a.gz").is_symlink() and (run_path / "a.gz").read_bytes() == b"mine"
    assert sorted(os.listdir(run_path)) == ["a.gz", "manifest.json"]


def test_a_run_directory_that_is_a_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "run-1").symlink_to(outside)
    with pytest.raises(OSError) as raised:
        RunDir(tmp_path / "run-1")
    assert raised.value.errno in (errno.ELOOP, errno.ENOTDIR)  # O_NOFOLLOW | O_DIRECTORY
    assert untouched(outside)


def test_only_a_regular_file_of_the_right_size_counts_as_complete(tmp_path: Path) -> None:
    with RunDir(tmp_path / "run") as run:
        run.write_atomic("a.gz", b"12345")
        os.mkfifo(run.path / "fifo.gz")  # opening it must not hang
        (run.path / "dir.gz").mkdir()
        assert run.open_complete("a.gz", 4) is None
        assert run.open_complete("fifo.gz", 0) is None
        assert run.open_complete("dir.gz", 4096) is None
        assert run.open_complete("missing.gz", 0) is None
        fd = run.open_complete("a.gz", 5)
        assert fd is not None
        os.close(fd)


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    run_path = tmp_path / "run"
    run_path.mkdir()
    for name in ("a.gz.part", "b.jsonl.part", "_SUCCESS", "keep.gz"):
        (run_path / name).write_text("x")
    with RunDir(run_path) as run:
        run.remove_leftovers("_SUCCESS")
    assert os.listdir(run_path) == ["keep.gz"]


def test_latest_is_swapped_to_the_newest_run(tmp_path: Path, outside: Path) -> None:
    (tmp_path / LATEST).symlink_to(outside)
    for name in ("run-1", "run-2"):
        with RunDir(tmp_path / name) as run:
            run.point_latest()
        assert os.readlink(tmp_path / LATEST) == name  # relative: survives remounting
    assert sorted(os.listdir(tmp_path)) == ["latest", "outside", "run-1", "run-2"]
    assert untouched(outside)


@pytest.mark.parametrize("create", [True, False])
def test_a_symlink_above_the_run_directory_is_refused(
    tmp_path: Path, outside: Path, create: bool
) -> None:
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume" / "a").symlink_to(outside)  # e.g. /data/a -> /etc
    with pytest.raises(OSError) as raised:
        RunDir(tmp_path / "volume" / "a" / "b" / "run-1", create=create)
    assert raised.value.errno == errno.ELOOP
    assert raised.value.filename == str(tmp_path / "volume" / "a")
    outcome = classify(raised.value)
    assert outcome.code == PERMANENT and str(tmp_path / "volume" / "a") in outcome.message
    assert untouched(outside)


def test_missing_directories_are_made_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised:
        RunDir(tmp_path / "volume" / "run-1", create=False)
    assert raised.value.filename == str(tmp_path / "volume")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a-file").write_text("")
    with pytest.raises(NotADirectoryError) as not_a_dir:
        RunDir(tmp_path / "a-file" / "run-1")
    assert not_a_dir.value.filename == str(tmp_path / "a-file")


def test_latest_never_moves_back_to_an_older_run(tmp_path: Path) -> None:
    older, newer = "20261128T190628Z-1a2b3c4d", "20261129T190628Z-5e6f7a8b"
    with RunDir(tmp_path / newer) as run:
        run.point_latest()
    with RunDir(tmp_path / older) as run:
        run.point_latest()  # finished last, started first: latest stays
    assert os.readlink(tmp_path / LATEST) == newer
    os.rmdir(tmp_path / newer)  # a newer run that is gone no longer holds latest
    with RunDir(tmp_path / older) as run:
        run.point_latest()
    assert os.readlink(tmp_path / LATEST) == older
