"""Flux's `healthCheckExprs` as docs/operations.md gives them: read from the page's Kustomization
examples, evaluated with cel-python on the objects captured from the sandbox (the Argo CD
checks' testdata), in the order Flux evaluates them, and held to the page's Flux table.

How Flux acts on an expression it cannot evaluate, and its observedGeneration rule, are Flux's
own (its docs, and RFC 0009); the page says so.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy import celtypes

from pinpoint_export_operator import api

from .docs_tables import CASES, OPERATIONS, ROOT, health_rows, row_of, section

TESTDATA = ROOT / "integrations" / "argocd" / api.GROUP
# Flux's StatusEvaluator: the first of these expressions that is true decides.
FLUX_ORDER = (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current"))
COLUMN = "healthCheckExprs"
NOT_EVALUATED = "not evaluated"


def kustomizations() -> list[dict[str, Any]]:
    flux = section(section(OPERATIONS.read_text(), "## GitOps health"), "### Flux")
    documents = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", flux, re.S)]
    return [d for d in documents if d.get("kind") == "Kustomization"]


def documented_exprs() -> dict[str, dict[str, str]]:
    """Each kind's expressions, from whichever example gives them (once per kind)."""
    found: dict[str, dict[str, str]] = {}
    for kustomization in kustomizations():
        for entry in kustomization["spec"].get("healthCheckExprs", []):
            assert entry["apiVersion"] == api.API_VERSION, entry
            assert entry["kind"] not in found, f"{entry['kind']}: given twice"
            found[entry["kind"]] = {key: entry[key] for key, _ in FLUX_ORDER if key in entry}
    return found


def flux_status(exprs: dict[str, str], obj: dict[str, Any]) -> str:
    """The status Flux computes from `exprs` (its object's top-level fields are the CEL
    variables). An expression that cannot be evaluated raises celpy.CELEvalError."""
    env = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for key, status in FLUX_ORDER:
        if key not in exprs:
            continue
        result = env.program(env.compile(exprs[key])).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise result
        assert isinstance(result, celtypes.BoolType), f"{key}: {exprs[key]!r} is not a bool"
        if result:
            return status
    return "InProgress"


def captured(kind: str, case: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (TESTDATA / kind / "testdata" / f"{case}.yaml").read_text()
    )
    return loaded


def retrying(obj: dict[str, Any]) -> dict[str, Any]:
    """A schedule whose pass failed and is retried: Reconciling=True, Ready left as it was."""
    obj = copy.deepcopy(obj)
    for condition in obj["status"]["conditions"]:
        if condition["type"] == "Reconciling":
            condition.update(status="True", reason="KubernetesUnavailable")
    return obj


def cases() -> list[Any]:
    """(kind, the object, the words naming its row): every capture, and a retried schedule."""
    found = [
        pytest.param(kind, captured(kind, case), keys, id=f"{kind}/{case}")
        for kind, named in CASES.items()
        for case, keys in named.items()
    ]
    schedule = "PinpointExportSchedule"
    reconciling = retrying(captured(schedule, "scheduled"))
    found.append(pytest.param(schedule, reconciling, {"Reconciling=True"}, id="retrying"))
    return found


@pytest.mark.parametrize(("kind", "obj", "keys"), cases())
def test_the_documented_expressions_give_the_documented_status(
    kind: str, obj: dict[str, Any], keys: set[str]
) -> None:
    exprs = documented_exprs()[kind]
    expected = row_of(health_rows("Flux"), kind, keys).cells[COLUMN]
    if expected.startswith(NOT_EVALUATED):
        assert "status" not in obj
        with pytest.raises(celpy.CELEvalError):
            flux_status(exprs, obj)
    else:
        # Flux reads expressions only once the status is of the object's generation.
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        assert flux_status(exprs, obj) == expected


def test_every_kind_has_expressions_and_every_capture_a_case() -> None:
    assert set(documented_exprs()) == set(CASES)
    for kind, named in CASES.items():
        testdata = {p.stem for p in (TESTDATA / kind / "testdata").glob("*.yaml")}
        assert testdata == set(named), kind
    statuses = {row.cells[COLUMN] for row in health_rows("Flux")}
    assert {s for s in statuses if not s.startswith(NOT_EVALUATED)} == {
        status for _, status in FLUX_ORDER
    }


def test_the_health_check_example_names_a_schedule() -> None:
    checks = [c for k in kustomizations() for c in k["spec"].get("healthChecks", [])]
    assert checks, "no spec.healthChecks example"
    for check in checks:
        assert check["apiVersion"] == api.API_VERSION
        assert check["kind"] == "PinpointExportSchedule"
        assert check["name"] and check["namespace"]


def test_a_wrong_expression_would_be_caught() -> None:
    """The evaluation is not vacuous: a swapped expression changes the status."""
    exprs = documented_exprs()["PinpointExport"]
    swapped = {"current": exprs["failed"], "failed": exprs["current"]}
    assert flux_status(swapped, captured("PinpointExport", "failed")) == "Current"


def test_testdata_is_where_the_page_says() -> None:
    assert f"`{Path(TESTDATA.relative_to(ROOT), '<Kind>', 'testdata')}/`" in OPERATIONS.read_text()
