"""Every condition reason the operator can set on a PinpointExport is documented, and every
documented reason can be set: read from the code itself, not from a list kept beside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pinpoint_export_operator

PACKAGE = Path(pinpoint_export_operator.__file__).parent
DOCS = PACKAGE.parents[1] / "docs" / "operations.md"


def literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def reasons_in_code() -> set[str]:
    """First arguments of CloudError(...), the reason argument of _fail/_kstatus, and the
    reasons that tables of error codes map to."""
    found: set[str] = set()
    for module in ("exports", "runtime"):
        for path in (PACKAGE / module).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    position = {"CloudError": 0, "_fail": 2, "_kstatus": 2}.get(node.func.id)
                    if position is not None and len(node.args) > position:
                        found.add(literal(node.args[position]) or "")
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                    if any(n.endswith(("_CODES", "REASON_OF")) for n in names):
                        found |= {literal(v) or "" for v in node.value.values}
    found.discard("")
    return found


def reasons_in_docs() -> set[str]:
    text = DOCS.read_text()
    section = text.split("### PinpointExport reasons", 1)[1].lstrip("\n")
    table = section.split("\n\n", 1)[0]  # the first table: the copier's follows apart
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_the_documented_reasons_are_the_ones_the_code_sets() -> None:
    code = reasons_in_code()
    docs = reasons_in_docs()
    assert len(code) >= 20
    assert code - docs == set(), "set by the code, missing from docs/operations.md"
    assert docs - code == set(), "documented, never set by the code"
