"""The Argo CD health checks (integrations/argocd), run in Lua as Argo CD runs them, on objects
captured from the sandbox (PPE_CAPTURE_TESTDATA=1 tests/e2e/test_health.py), case by case as
argo-cd's own health_test.yaml files list them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("checks", ROOT / "integrations/argocd/checks.py")
assert _spec is not None and _spec.loader is not None
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)

# The healths each kind can have, all of which its testdata must show.
HEALTHS = {
    "PinpointExport": {"Progressing", "Healthy", "Degraded"},
    "PinpointExportSchedule": {"Progressing", "Healthy", "Suspended", "Degraded"},
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def cases() -> list[Any]:
    return [
        pytest.param(check, test, id=f"{check.kind}/{test['inputPath']}")
        for check in checks.checks()
        for test in load(check.directory / "health_test.yaml")["tests"]
    ]


@pytest.mark.parametrize(("check", "test"), cases())
def test_health(check: Any, test: dict[str, Any]) -> None:
    obj = load(check.directory / test["inputPath"])
    expected = test["healthStatus"]
    assert checks.health(check.script, obj) == (expected["status"], expected["message"])


@pytest.mark.parametrize("check", checks.checks(), ids=lambda c: c.kind)
def test_every_capture_is_a_case_and_every_health_is_shown(check: Any) -> None:
    tests = load(check.directory / "health_test.yaml")["tests"]
    listed = sorted(t["inputPath"] for t in tests)
    captured = sorted(f"testdata/{p.name}" for p in (check.directory / "testdata").iterdir())
    assert listed == captured
    assert {t["healthStatus"]["status"] for t in tests} == HEALTHS[check.kind]


def test_there_is_a_check_for_each_kind() -> None:
    assert {(c.group, c.kind) for c in checks.checks()} == {
        ("pinpoint.exports.dev", kind) for kind in HEALTHS
    }


def test_argocd_cm_carries_the_lua_sources() -> None:
    text = checks.ARGOCD_CM.read_text()
    assert text == checks.render(), "run .venv/bin/python integrations/argocd/checks.py"
    assert load(checks.ARGOCD_CM)["data"] == {c.key: c.script for c in checks.checks()}


def test_an_invalid_health_is_refused() -> None:
    """Argo CD refuses a status it does not know; so does the runner, so a typo fails."""
    with pytest.raises(ValueError, match="Healty"):
        checks.health('return {status = "Healty"}', {})
