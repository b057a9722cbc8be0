"""destination.keepRuns end to end: three exports into one path keep the two newest runs."""

from __future__ import annotations

import os

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
