"""--keep-runs: only complete runs of this path go, the oldest first; nothing else is touched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pinpoint_export_operator.copier.layout import LATEST, RunDir
from pinpoint_export_operator.copier.manifest import (
    MANIFEST,
    SUCCESS,
    FileRecord,
    build_manifest,
    manifest_bytes,
)
from pinpoint_export_operator.copier.retention import prune


def run_id(n: int) -> str:
    return f"2026010{n}T000000Z-0000000{n}"


def make_run(parent: Path, name: str, *, complete: bool = True) -> Path:
    """A run directory as the copier leaves it: one piece, manifest.json, _SUCCESS."""
    run = parent / name
    run.mkdir(parents=True)
    data = b"piece"
    (run / "a.gz").write_bytes(data)
    record = FileRecord("a.gz", len(data), hashlib.sha256(data).hexdigest(), "k/a.gz", "e")
    source = f"s3://bucket/endpoints/ns/export/{name}/"
    (run / MANIFEST).write_bytes(manifest_bytes(build_manifest(source, [record])))
    if complete:
        (run / SUCCESS).write_bytes(b"")
    return run


def publish(parent: Path, name: str, keep: int) -> list[str]:
    with RunDir(parent / name, create=False) as run:
        run.point_latest()
        return prune(run, keep)


def test_exactly_keep_complete_runs_remain_and_nothing_else_is_touched(tmp_path: Path) -> None:
    parent, outside = tmp_path / "nightly", tmp_path / "outside"
    for n in range(1, 6):
        make_run(parent, run_id(n))
    make_run(parent, run_id(8), complete=False)  # newer, being written by another copier
    (parent / "notes").mkdir()  # not a run
    (parent / "notes" / MANIFEST).write_text("{}")
    target = make_run(outside, run_id(0))  # a complete run elsewhere, symlinked in by name
    os.symlink(target, parent / "20250101T000000Z-deadbeef")

    removed = publish(parent, run_id(5), keep=2)

    assert sorted(removed) == [run_id(n) for n in (1, 2, 3)]
    assert sorted(p.name for p in parent.iterdir()) == sorted(
        [run_id(4), run_id(5), run_id(8), "notes", "20250101T000000Z-deadbeef", LATEST]
    )
    assert os.readlink(parent / LATEST) == run_id(5)
    assert (target / SUCCESS).exists() and (target / "a.gz").exists()
    assert (parent / "notes" / MANIFEST).exists()
    assert (parent / run_id(8) / "a.gz").exists()


def test_latest_and_the_published_run_survive_however_old(tmp_path: Path) -> None:
    parent = tmp_path / "nightly"
    for n in range(1, 5):
        make_run(parent, run_id(n))
    os.symlink(run_id(4), parent / LATEST)  # a newer run holds latest: ours stays behind it

    removed = publish(parent, run_id(1), keep=1)

    assert sorted(removed) == [run_id(2), run_id(3)]
    assert sorted(p.name for p in parent.iterdir()) == [run_id(1), run_id(4), LATEST]


def test_runs_that_are_not_exactly_a_complete_run_are_left(tmp_path: Path) -> None:
    parent = tmp_path / "nightly"
    extra = make_run(parent, run_id(1))
    (extra / "mine.txt").write_text("a user's file")  # not in its manifest
    nested = make_run(parent, run_id(2))
    (nested / "sub").mkdir()
    foreign = make_run(parent, run_id(3))
    recorded = (foreign / MANIFEST).read_bytes()  # another run's manifest, copied in
    (foreign / MANIFEST).write_bytes(recorded.replace(run_id(3).encode(), run_id(6).encode()))
    linked = make_run(parent, run_id(4))
    (linked / "a.gz").unlink()
    os.symlink(tmp_path / "elsewhere", linked / "a.gz")  # a symlink where a piece should be
    (tmp_path / "elsewhere").write_text("keep me")
    make_run(parent, run_id(5))

    assert publish(parent, run_id(5), keep=1) == []

    assert sorted(p.name for p in parent.iterdir()) == [*(run_id(n) for n in range(1, 6)), LATEST]
    assert (extra / "mine.txt").exists() and (extra / SUCCESS).exists()
    assert (tmp_path / "elsewhere").read_text() == "keep me"
