"""What an export leaves on its volume: keepRuns keeps the newest runs, and a claim too small
for the export fails before anything is written."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinpoint_export_sandbox.emulator.admin import EmulatorAdmin

from .conftest import Exports

pytestmark = pytest.mark.e2e
PATH = "marketing/retained"
SYMLINK = "20200101T000000Z-0badc0de"  # named like a run, pointing elsewhere


def test_keep_runs_leaves_the_newest_complete_runs_and_nothing_else(
    exports: Exports, emulator: EmulatorAdmin
) -> None:
    emulator.seed(exports.app, 20)
    base = exports.volume / PATH
    destination = {"claimName": "exports", "path": PATH, "keepRuns": 2}
    runs = []
    for number in range(3):
        name = f"retained-{number}"
        exports.apply(name, destination=destination)
        finished = exports.wait(name)
        assert finished["status"]["phase"] == "Succeeded", finished["status"]
        assert finished["status"]["output"]["lines"] == 20
        runs.append(finished["status"]["runId"])
        if number == 0:  # planted beside the runs: never touched
            (base / "notes").mkdir()
            (base / "notes" / "readme.txt").write_text("not a run")
            (exports.volume / "elsewhere").mkdir()
            (exports.volume / "elsewhere" / "_SUCCESS").write_text("")
            os.symlink(exports.volume / "elsewhere", base / SYMLINK)

    assert sorted(p.name for p in base.iterdir()) == sorted([*runs[1:], "latest", "notes", SYMLINK])
    assert os.readlink(base / "latest") == runs[2]
    for run in runs[1:]:
        assert (base / run / "_SUCCESS").exists() and (base / run / "manifest.json").exists()
    assert (base / "notes" / "readme.txt").read_text() == "not a run"
    assert (exports.volume / "elsewhere" / "_SUCCESS").exists()


@pytest.fixture
def small_volume(exports: Exports) -> Iterator[Path]:
    """A directory of the claim that is a 64 KiB filesystem of its own, as a claim of that size
    on a real storage class would be (the sandbox's claims share the host's disk)."""
    where = exports.volume / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def test_a_claim_too_small_fails_before_copying_with_the_sizes(
    exports: Exports, emulator: EmulatorAdmin, small_volume: Path
) -> None:
    emulator.seed(exports.app, 2000)
    exports.apply("too-big", destination={"claimName": "exports", "path": "small/too-big"})
    failed = exports.wait("too-big")
    assert failed["status"]["phase"] == "Failed", failed["status"]
    stalled = next(c for c in failed["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "CopyFailed", stalled
    # The copier's reason and both sizes, so that the user knows how much to add.
    said = "copier said: InsufficientSpace (exit 3): the copy needs "
    assert said in stalled["message"], stalled
    assert re.search(r"needs .*\d+ bytes.* only 65536 bytes .* free", stalled["message"]), stalled
    assert list(small_volume.rglob("*")) == []  # nothing written, not even the run directory
