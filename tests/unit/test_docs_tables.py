"""The reader of the docs' tables (docs_tables.py), so that a broken reader fails here and not
only in tests/e2e/test_health.py, which takes its expected results from it.

The captured objects of the Argo CD checks (and their health_test.yaml) stand in for live ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .docs_tables import (
    CASES,
    OPERATIONS,
    ROOT,
    argocd_message,
    cells,
    health_rows,
    row_of,
    section,
    tables,
)
from .test_argocd_health import checks

CHECKS = ROOT / "integrations" / "argocd" / "pinpoint.exports.dev"

KSTATUS = {"InProgress", "Current", "Failed"}
# Rows no captured object shows: a schedule whose pass failed and is being retried.
UNCAPTURED = {"Reconciling=True"}


def table_lines(tool: str) -> list[str]:
    """The body lines of the tool's table, as written."""
    text = section(section(OPERATIONS.read_text(), "## GitOps health"), f"### {tool}")
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert lines[1].startswith("|--"), "one table, its header first"
    return lines[2:]


def load(kind: str, path: str) -> Any:
    return yaml.safe_load((CHECKS / kind / path).read_text())


def health_test(kind: str) -> dict[str, dict[str, Any]]:
    """health_test.yaml's expected health of each captured case, by case."""
    tests = load(kind, "health_test.yaml")["tests"]
    return {Path(t["inputPath"]).stem: t["healthStatus"] for t in tests}


def test_cells_keep_a_pipe_inside_backticks() -> None:
    assert cells("| `a|b` | c | |") == ["`a|b`", "c", ""]


def test_tables_are_read_whole_and_apart() -> None:
    text = "x\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n| c |\n|---|\n| 5 |\n"
    assert tables(text) == [[{"a": "1", "b": "2"}, {"a": "3", "b": "4"}], [{"c": "5"}]]


@pytest.mark.parametrize("tool", ["Argo CD", "Flux"])
def test_every_row_is_read_and_named_by_a_case(tool: str) -> None:
    rows = health_rows(tool)
    assert len(rows) == len(table_lines(tool)) >= 7
    named = {
        id(row_of(rows, kind, keys)) for kind, cases in CASES.items() for keys in cases.values()
    }
    for row in rows:
        assert id(row) in named or row.keys & UNCAPTURED, f"{tool}: no case reads {row.cells}"
        if tool == "Flux":
            assert row.verdict("kstatus") in KSTATUS, row.cells
        else:
            assert row.verdict("Argo CD health") in checks.STATUSES, row.cells


@pytest.mark.parametrize(
    ("kind", "case"), [(kind, case) for kind, cases in CASES.items() for case in cases]
)
def test_the_argocd_row_of_each_capture_is_its_expected_health(kind: str, case: str) -> None:
    """What the e2e test expects of a live object, on the captured one."""
    row = row_of(health_rows("Argo CD"), kind, CASES[kind][case])
    obj = load(kind, f"testdata/{case}.yaml")
    want = health_test(kind)[case]
    assert (row.verdict("Argo CD health"), argocd_message(row)(obj)) == (
        want["status"],
        want["message"],
    )
