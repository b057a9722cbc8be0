"""The chart's alerts (files/alerts.yaml): promtool's checks and rule unit tests
(alerts_test.yaml), and what every alert must carry.

promtool is built from tools/promtool by `make tools`; without it these tests fail rather than
skip, so alerts are never left untested.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinpoint_export_sandbox import binaries

from .test_dashboard import exposed_names, metric_names

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pinpoint-export-operator"
ALERTS = CHART / "files" / "alerts.yaml"
ALERTS_TEST = Path(__file__).with_name("alerts_test.yaml")
RUNBOOK = ROOT / "docs" / "operations.md"
SEVERITIES = {"critical", "warning", "info"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return binaries.find("promtool")
    except binaries.BinaryNotFound as missing:
        pytest.fail(str(missing), pytrace=False)


def run(promtool: Path, *args: str) -> None:
    done = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules(promtool: Path) -> None:
    run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(ALERTS))


def test_promtool_rule_unit_tests_pass(promtool: Path) -> None:
    run(promtool, "test", "rules", str(ALERTS_TEST))


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [
        case
        for group in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
    ]
    for rule in alerts():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']} never quiet"


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook() -> None:
    home = yaml.safe_load((CHART / "Chart.yaml").read_text())["home"]
    prefix = f"{home}/blob/main/docs/operations.md#"
    anchors = github_anchors(RUNBOOK.read_text())
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        url = annotations["runbook_url"]
        assert url.startswith(prefix) and url.removeprefix(prefix) in anchors, url


def test_rules_and_their_tests_name_only_metrics_the_operator_exposes() -> None:
    inputs = [
        series["series"]
        for group in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for series in group["input_series"]
    ]
    exprs = [rule["expr"] for rule in alerts()] + inputs
    unknown = {name for expr in exprs for name in metric_names(expr)} - exposed_names()
    assert not unknown, sorted(unknown)
