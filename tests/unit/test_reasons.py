"""Every reason the operator can give, on a condition or an Event, of a PinpointExport or a
PinpointExportSchedule, is documented, and every documented reason can be given: read from the
code itself, not from a list kept beside it.

docs/operations.md has a table of each kind's reasons (conditions and Events); docs/behaviour.md
one of each kind's Events; each CRD's condition `reason` names some of its kind's reasons.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import pinpoint_export_operator
from pinpoint_export_operator import api

from .crd_schema import CRD_PATH, SCHEDULE_CRD_PATH, root_schema
from .docs_tables import OPERATIONS, ROOT, code, section, tables

PACKAGE = Path(pinpoint_export_operator.__file__).parent
BEHAVIOUR = ROOT / "docs" / "behaviour.md"
EXPORT, SCHEDULE = "PinpointExport", "PinpointExportSchedule"
# Each kind's modules, and the shared ones whose errors reach its status and Events (a
# schedule's only through runtime/errors.py's kubernetes_error).
SOURCES = {
    EXPORT: ("exports/*.py", "runtime/*.py"),
    SCHEDULE: ("schedules/*.py", "runtime/errors.py"),
}
CRDS = {EXPORT: CRD_PATH, SCHEDULE: SCHEDULE_CRD_PATH}
# Classes whose first argument is a reason.
ERRORS = {"CloudError", "InvalidSpec"}
CONDITION_TYPES = {"Ready", "Reconciling", "Stalled"}


def modules(kind: str) -> list[ast.Module]:
    paths = sorted({p for pattern in SOURCES[kind] for p in PACKAGE.glob(pattern)})
    return [ast.parse(path.read_text()) for path in paths]


def literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def name_of(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def functions(trees: list[ast.Module]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield node


def reason_positions(trees: list[ast.Module]) -> dict[str, int]:
    """Functions with a parameter named `reason`, and its position in a call."""
    positions = {}
    for function in functions(trees):
        names = [a.arg for a in function.args.posonlyargs + function.args.args]
        if names[:1] in (["self"], ["cls"]):
            names = names[1:]
        if "reason" in names:
            positions[function.name] = names.index("reason")
    return positions


def strings(node: ast.expr, scope: ast.AST) -> set[str]:
    """The strings `node` can be: a literal, a conditional of them, a variable assigned only
    those in `scope`, or an f-string of them. Empty if it is computed otherwise."""
    if isinstance(node, ast.IfExp):
        return strings(node.body, scope) | strings(node.orelse, scope)
    if isinstance(node, ast.Name):
        values = [
            assign.value
            for assign in ast.walk(scope)
            if isinstance(assign, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == node.id for t in assign.targets)
        ]
        found = [strings(v, scope) for v in values]
        return set().union(*found) if found and all(found) else set()
    if isinstance(node, ast.JoinedStr):
        parts = [
            {literal(v) or ""} if isinstance(v, ast.Constant) else strings(v.value, scope)
            for v in node.values
            if isinstance(v, ast.Constant | ast.FormattedValue)
        ]
        assert all(parts), f"an f-string reason this test cannot read: {ast.unparse(node)}"
        return {"".join(p) for p in itertools.product(*parts)}
    value = literal(node)
    return {value} if value else set()


def event_reasons(kind: str) -> set[str]:
    """Reasons of `Event(type, reason, message)` written in the code (an error's own reason,
    `error.reason`, is among the condition reasons)."""
    found: set[str] = set()
    for function in functions(modules(kind)):
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and name_of(node.func) == "Event" and len(node.args) > 1:
                found |= strings(node.args[1], function)
    return found


def reasons_in_code(kind: str, events: bool = True) -> set[str]:
    """Every reason of `kind`: first arguments of the error classes, the `reason` argument of
    any function that takes one, literals assigned to `reason`, the values of the tables of
    error codes, and (with `events`) the reasons of the Events."""
    trees = modules(kind)
    positions = reason_positions(trees)
    found = event_reasons(kind) if events else set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = name_of(node.func)
                position = 0 if name in ERRORS else positions.get(name or "")
                if position is not None and len(node.args) > position:
                    found.add(literal(node.args[position]) or "")
                found |= {literal(k.value) or "" for k in node.keywords if k.arg == "reason"}
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = [(target, node.value)]
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        pairs = list(zip(target.elts, node.value.elts, strict=False))
                    for name, value in pairs:
                        if isinstance(name, ast.Name) and name.id == "reason":
                            found.add(literal(value) or "")
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if isinstance(node.value, ast.Dict) and any(
                    n.endswith(("_CODES", "REASON_OF")) for n in names
                ):
                    found |= {literal(v) or "" for v in node.value.values if v is not None}
    found.discard("")
    return found


def reasons_in_docs(text: str) -> set[str]:
    """The reasons of the first table in `text`, in its `reason` column."""
    (rows, *_) = tables(text)
    return {name for row in rows for name in code(row["reason"]) if re.fullmatch(r"[A-Z]\w+", name)}


@pytest.mark.parametrize(
    ("kind", "minimum"), [(EXPORT, 30), (SCHEDULE, 15)], ids=lambda value: str(value)
)
def test_the_documented_reasons_are_the_ones_the_code_gives(kind: str, minimum: int) -> None:
    code_reasons = reasons_in_code(kind)
    docs = reasons_in_docs(section(OPERATIONS.read_text(), f"### {kind} reasons"))
    assert len(code_reasons) >= minimum, sorted(code_reasons)
    assert code_reasons - docs == set(), "given by the code, missing from docs/operations.md"
    assert docs - code_reasons == set(), "in docs/operations.md, never given by the code"


@pytest.mark.parametrize("kind", [EXPORT, SCHEDULE])
def test_every_event_written_out_is_in_the_behaviour_docs(kind: str) -> None:
    """docs/behaviour.md's Events table of each kind; an export's error reasons are its row
    "any reason above"."""
    events = event_reasons(kind)
    documented = reasons_in_docs(
        section(section(BEHAVIOUR.read_text(), f"## {kind}"), "### Events")
    )
    assert len(events) >= 7, sorted(events)
    assert events - documented == set(), "posted, missing from docs/behaviour.md's Events"
    assert documented - reasons_in_code(kind) == set(), "in docs/behaviour.md, never given"


@pytest.mark.parametrize("kind", [EXPORT, SCHEDULE])
def test_the_crd_names_real_reasons(kind: str) -> None:
    conditions = root_schema(CRDS[kind])["properties"]["status"]["properties"]["conditions"]
    description = conditions["items"]["properties"]["reason"]["description"]
    words = re.findall(r"\b[A-Z]\w*", description)[1:]  # the first starts the sentence
    named = set(words) - CONDITION_TYPES - {"CamelCase"}
    assert len(named) >= 5, description
    assert named - reasons_in_code(kind) == set(), f"{kind} CRD: not reasons of the code"


def test_an_unreadable_reason_fails() -> None:
    tree = ast.parse("def f(x):\n    Event('Normal', f'Job{x.verb}', '')\n")
    with pytest.raises(AssertionError, match="cannot read"):
        for function in functions([tree]):
            strings(function.body[0].value.args[1], function)  # type: ignore[attr-defined]


def test_the_metrics_label_knows_every_condition_reason_of_an_export() -> None:
    """api.EXPORT_REASONS bounds pinpoint_exports' `reason` label: an export's reasons without
    the Events-only ones (ExportJobCreated, CopyPodWaiting...)."""
    assert reasons_in_code(EXPORT, events=False) == api.EXPORT_REASONS
    assert "CopyPodWaiting" not in api.EXPORT_REASONS
