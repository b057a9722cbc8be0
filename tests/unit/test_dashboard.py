"""The Grafana dashboard the chart ships (files/dashboard.json): its shape, and that every query
names only metrics the operator exposes, so a renamed metric or a typo fails here, not on a
blank panel."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pinpoint_export_operator.runtime import metrics
from pinpoint_export_operator.runtime.inventory import Inventory

CHART = Path(__file__).resolve().parents[2] / "charts" / "pinpoint-export-operator"
DASHBOARD = CHART / "files" / "dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Series a sample's name takes, by metric type (prometheus_client strips `_total` from names).
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
# PromQL keywords, which read like metric names.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
# `by (le, phase)`, `on (job)`...: label names, not metric names.
GROUPING = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"


def exposed_names() -> set[str]:
    """Every series name /metrics can serve: the operator's registry and its inventory (with
    the opt-in per-schedule gauges), plus `up`, which Prometheus adds to every target."""
    registry = CollectorRegistry()
    registry.register(Inventory(per_schedule=True))
    families = [*metrics.REGISTRY.collect(), *registry.collect()]
    return {"up"} | {
        family.name + suffix for family in families for suffix in SUFFIXES.get(family.type, ("",))
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping label lists, function calls and keywords are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(GROUPING, " ", expr)
    words = re.findall(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\()?", expr)
    return {word for word, call in words if not call and word not in KEYWORDS}


def load() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Panels, and those inside collapsed rows; rows themselves hold no query."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every target and of every variable's `label_values(<expr>, label)`."""
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            assert query, f"variable {variable['name']}: not label_values(<expr>, label)"
            yield f"variable {variable['name']!r}", query.group(1)


def test_metric_names_finds_typos_and_ignores_functions_labels_and_keywords() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, phase) (rate(pinpoint_export_phase_duration_second"
        's_bucket{job="$job", phase!~"a|b"}[5m]))) or on (job) vector(0) * time() - 1e3 '
        "+ pinpoint_export_actve offset 5m"
    )
    assert metric_names(expr) == {
        "pinpoint_export_phase_duration_seconds_bucket",
        "pinpoint_export_actve",
    }
    assert "pinpoint_export_actve" not in exposed_names()
    assert {
        "pinpoint_export_transitions_total",
        "pinpoint_export_call_duration_seconds_bucket",
        "pinpoint_exports",
        "pinpoint_export_schedule_last_success_timestamp_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    } <= exposed_names()


def test_dashboard_identity_and_variables() -> None:
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "namespace" in variables


@pytest.mark.parametrize("panel", list(panels(load())), ids=lambda panel: panel["title"])
def test_every_panel_queries_the_datasource_variable(panel: dict[str, Any]) -> None:
    assert panel["title"].strip()
    assert panel["targets"], "a panel without a query"
    assert panel["datasource"] == DATASOURCE
    for target in panel["targets"]:
        assert target["expr"].strip() and target["datasource"] == DATASOURCE


def test_every_query_names_only_metrics_the_operator_exposes() -> None:
    exposed = exposed_names()
    unknown = {
        f"{where}: {name}"
        for where, expr in queries(load())
        for name in metric_names(expr) - exposed
    }
    assert not unknown, f"metrics /metrics does not serve: {sorted(unknown)}"


def test_counts_of_objects_are_summed_per_replica() -> None:
    """Every replica, a standby too, counts every object, by several labels (an export's phase
    and reason): a panel sums a count per replica, over the labels it does not show, and then
    shows one replica's, never the sum of all."""
    counts = ("pinpoint_exports", "pinpoint_export_schedules")
    for where, expr in queries(load()):
        if where.startswith("variable"):
            continue  # label_values() lists values, it does not count
        for name in counts:
            for found in re.finditer(rf"\b{name}\{{", expr):
                summed = re.search(r"\bsum by \(([^)]*)\) \($", expr[: found.start()])
                assert summed and "instance" in summed.group(1), f"{where}: {expr}"
                assert expr.startswith("max"), f"{where}: replicas added up: {expr}"


def test_ids_are_unique_and_the_layout_fits_the_grid() -> None:
    dashboard = load()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
