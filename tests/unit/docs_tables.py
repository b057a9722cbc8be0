"""Tables of the project's docs, read by the tests that hold the code (and live objects) to
what the docs say, so that no test keeps its own copy of a table.

Self-contained: tests/e2e/test_health.py loads this file by path, as the unit tests import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "docs" / "operations.md"

Row = dict[str, str]  # a table row: header -> cell, both as written
Obj = Mapping[str, Any]


def section(markdown: str, heading: str) -> str:
    """The text under `heading` (a whole heading line, e.g. `### Flux`), up to the next heading
    of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    ends = (i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i]))
    return "\n".join(lines[start : next(ends, len(lines))])


def cells(line: str) -> list[str]:
    """A table line's cells; a `|` inside backticks is text, not a border."""
    found, cell, quoted = [], "", False
    for char in line.strip().removeprefix("|").removesuffix("|"):
        quoted ^= char == "`"
        if char == "|" and not quoted:
            found, cell = [*found, cell.strip()], ""
        else:
            cell += char
    return [*found, cell.strip()]


def tables(text: str) -> list[list[Row]]:
    """Every Markdown table in `text`, as its rows keyed by the header's cells (unquoted)."""
    found: list[list[Row]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        is_start = line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|--")
        if not is_start or (i > 0 and lines[i - 1].startswith("|")):
            continue
        header = [name.strip("`") for name in cells(line)]
        rows: list[Row] = []
        for body in lines[i + 2 :]:
            if not body.startswith("|"):
                break
            row = cells(body)
            assert len(row) == len(header), f"{body!r}: {len(row)} cells, {len(header)} headers"
            rows.append(dict(zip(header, row, strict=True)))
        found.append(rows)
    return found


def code(cell: str) -> list[str]:
    """The backticked parts of a cell, in order."""
    return re.findall(r"`([^`]+)`", cell)


# GitOps health (docs/operations.md): what Argo CD and Flux show for each kind of object.

KINDS = {"export": "PinpointExport", "schedule": "PinpointExportSchedule"}
NO_STATUS = "no status yet"
# The captured cases (integrations/argocd/<group>/<Kind>/testdata/<case>.yaml, and the objects
# of tests/e2e/test_health.py), each by the words that name it in the tables' object column.
CASES: dict[str, dict[str, set[str]]] = {
    "PinpointExport": {
        "created": {NO_STATUS},
        "pending": {"Pending"},
        "exporting": {"Exporting"},
        "copying": {"Copying"},
        "succeeded": {"Succeeded"},
        "failed": {"Failed"},
    },
    "PinpointExportSchedule": {
        "created": {NO_STATUS},
        "scheduled": {"Ready=True", "Scheduled"},
        "suspended": {"spec.suspend: true", "Suspended"},
        "invalid-time-zone": {"InvalidTimeZone"},
        "last-run-failed": {"LastRunFailed"},
    },
}


@dataclass(frozen=True)
class HealthRow:
    kinds: frozenset[str]  # PinpointExport, PinpointExportSchedule
    keys: frozenset[str]  # the object column's backticked words, and NO_STATUS if it says so
    cells: Row

    def verdict(self, column: str) -> str:
        """A column's value without Markdown's emphasis (`**Current**`)."""
        return self.cells[column].strip("*")

    def true_conditions(self) -> list[str]:
        """The conditions the object column names as `<Type>=True`."""
        return [key.removesuffix("=True") for key in sorted(self.keys) if key.endswith("=True")]


def health_rows(tool: str) -> list[HealthRow]:
    """The table of `### <tool>` (Argo CD, Flux) under "GitOps health"."""
    gitops = section(OPERATIONS.read_text(), "## GitOps health")
    (rows, *_) = tables(section(gitops, f"### {tool}"))
    parsed = []
    for row in rows:
        what = row["object"]
        kinds = frozenset(KINDS[word] for word in re.findall(r"\w+", what) if word in KINDS)
        keys = set(code(what)) | ({NO_STATUS} if NO_STATUS in what else set())
        assert kinds and keys, f"{tool}: a row names no kind or no case: {what!r}"
        parsed.append(HealthRow(kinds, frozenset(keys), row))
    return parsed


def row_of(rows: list[HealthRow], kind: str, keys: set[str]) -> HealthRow:
    """The one row of `kind` that names any of `keys` (a case of CASES, or another)."""
    rows = [r for r in rows if kind in r.kinds and r.keys & keys]
    assert len(rows) == 1, f"{len(rows)} rows for {kind} {sorted(keys)}, not one"
    return rows[0]


def argocd_message(row: HealthRow) -> Callable[[Obj], str | None]:
    """Where the message column says Argo CD's message comes from: a text, a field, or the
    message of the first True condition it names ("its": the object column's `<Type>=True`)."""
    cell = row.cells["message"]
    if cell == "its message" or cell.endswith("condition's message"):
        types = row.true_conditions() if cell == "its message" else code(cell)
        assert types, f"no condition named for {cell!r}"
        return lambda obj: next(
            (c["message"] for t in types for c in _conditions(obj) if _is_true(c, t)), None
        )
    (text,) = code(cell)
    if re.fullmatch(r"[a-z]+(\.[a-zA-Z]+)+", text):  # a field, e.g. status.message
        return lambda obj: _field(obj, text.split("."))
    return lambda obj: text


def _conditions(obj: Obj) -> list[Obj]:
    conditions: list[Obj] = (obj.get("status") or {}).get("conditions") or []
    return conditions


def _is_true(condition: Obj, type_: str) -> bool:
    return condition.get("type") == type_ and condition.get("status") == "True"


def _field(obj: Obj, path: list[str]) -> str | None:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return None if value is None else str(value)
