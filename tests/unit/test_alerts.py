"""The chart's alerts (files/alerts.yaml): promtool's checks and rule unit tests
(alerts_test.yaml), what every alert must carry, and the PrometheusRule Helm renders from them
(the file as it is, but for PinpointExportStuck's threshold, a chart value).

promtool and Helm are built from tools/ by `make unit`; without them these tests fail rather
than skip, so alerts are never left untested.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
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


def binary(name: str) -> Path:
    try:
        return binaries.find(name)
    except binaries.BinaryNotFound as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="module")
def promtool() -> Path:
    return binary("promtool")


Rules = dict[str, Any]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Rules]:
    """The chart's PrometheusRule spec, rendered by Helm with `--set` values."""
    helm, home = binary("helm3"), tmp_path_factory.mktemp("helm")
    env = {
        **os.environ,
        **{f"HELM_{d}_HOME": str(home / d.lower()) for d in ("CACHE", "CONFIG", "DATA")},
    }
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    oldest = re.search(r"\d+\.\d+\.\d+", chart["kubeVersion"])
    assert oldest is not None

    def render(*values: str) -> Rules:
        sets = ["metrics.prometheusRule.enabled=true", *values]
        command = [str(helm), "template", "ppe", str(CHART), "--kube-version", oldest.group()]
        command += ["--show-only", "templates/prometheusrule.yaml"]
        command += [arg for value in sets for arg in ("--set", value)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        spec: Rules = yaml.safe_load(done.stdout)["spec"]
        return spec

    return render


STUCK = "12 * 3600  # metrics.prometheusRule.exportStuckAfter"  # what the chart replaces


def seconds(duration: str) -> int:
    """A duration as values.schema.json allows it (`90m`, `12h`, `2d`), in seconds."""
    return int(duration[:-1]) * {"m": 60, "h": 3600, "d": 86400}[duration[-1]]


def stuck(rules: Rules) -> str:
    (expr,) = [
        r["expr"] for g in rules["groups"] for r in g["rules"] if r["alert"].endswith("Stuck")
    ]
    return str(expr)


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


def test_the_chart_renders_the_tested_rules_and_its_default_is_theirs(
    rendered: Callable[..., Rules],
) -> None:
    """promtool tests files/alerts.yaml; the chart's default threshold is the file's."""
    assert ALERTS.read_text().count(STUCK) == 1
    default = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["prometheusRule"]
    assert seconds(default["exportStuckAfter"]) == 12 * 3600
    expected = yaml.safe_load(ALERTS.read_text().replace(STUCK, str(12 * 3600)))
    assert rendered() == expected


@pytest.mark.parametrize("after", ["90m", "18h", "2d"])
def test_export_stuck_after_sets_the_threshold(
    after: str, rendered: Callable[..., Rules], promtool: Path, tmp_path: Path
) -> None:
    rules = rendered(f"metrics.prometheusRule.exportStuckAfter={after}")
    assert stuck(rules).endswith(f"> {seconds(after)}")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(tmp_path / "rules.yaml"))
