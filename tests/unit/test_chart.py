"""The Helm chart's files, checked without a cluster or a Helm binary.

Rendering, installing and the API server's verdict are in tests/e2e/test_helm.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinpoint_export_operator import __version__

from .docs_tables import code, section, tables

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pinpoint-export-operator"
# CRDs the chart ships that are not the project's API: Kopf's, for peering.
CHART_ONLY_CRDS = {"kopf-peerings.yaml"}
KINDS = ("PinpointExport", "PinpointExportSchedule")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_chart_crds_are_copies_of_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top, "no CRDs under crds/"
    stale = sorted(n for n in top if chart.get(n) != top[n])
    extra = sorted(set(chart) - set(top) - CHART_ONLY_CRDS)
    assert not stale and not extra, (
        f"chart CRDs differ from crds/ ({stale}) or have no source ({extra}): run `make chart-crds`"
    )


def test_kopf_peering_crds() -> None:
    crds = list(yaml.safe_load_all((CHART / "crds" / "kopf-peerings.yaml").read_text()))
    scopes = {crd["metadata"]["name"]: crd["spec"]["scope"] for crd in crds}
    assert scopes == {
        "clusterkopfpeerings.kopf.dev": "Cluster",
        "kopfpeerings.kopf.dev": "Namespaced",
    }
    for crd in crds:
        (version,) = crd["spec"]["versions"]
        # Kopf merge-patches `status` on the object itself: no status subresource.
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True


def test_chart_metadata() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert re.fullmatch(r">=1\.\d+\.\d+-0", chart["kubeVersion"])
    assert chart["appVersion"] == __version__, "appVersion is the operator's version"


def test_every_rbac_verb_has_a_reason() -> None:
    """One verb a line, each with a comment saying why the operator needs it."""
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    assert not [line for line in lines if re.search(r"verbs:\s*\[", line)], "one verb a line"
    verbs: list[str] = []
    for number, line in enumerate(lines):
        if line.strip() != "verbs:":
            continue
        for following in lines[number + 1 :]:
            if following.strip().startswith("#"):  # a reason's second line
                continue
            item = re.fullmatch(r"\s*- ([a-z]+)(\s.*)?", following)
            if item is None:
                break
            verbs.append(item.group(1))
            reason = re.match(r"\s+#\s*\S", item.group(2) or "")
            assert reason, f"no reason for {following.strip()!r}"
    assert {"list", "watch", "patch", "create", "get", "update"} <= set(verbs)
    assert not {"*", "deletecollection", "escalate", "bind", "impersonate"} & set(verbs)


@pytest.fixture
def jsonschema() -> Any:
    return pytest.importorskip("jsonschema", reason="jsonschema (a dev dependency) not installed")


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def rbac_rules() -> dict[str, set[str]]:
    """The verbs rbac.yaml grants, by resource as docs/operations.md names it: `batch/jobs` for
    a group's, `pods` for the core group's, `kopf.dev` for the peering objects."""
    granted: dict[str, set[str]] = {}
    group = ""
    names: list[str] = []
    for line in (CHART / "templates" / "rbac.yaml").read_text().splitlines():
        if found := re.match(r"\s*- apiGroups: \[(.*)\]", line):
            group = found.group(1).strip('"')
        elif found := re.match(r"\s*resources: \[(.*)\]", line):
            resources = [name.strip() for name in found.group(1).split(",")]
            if group == "kopf.dev":
                names = ["kopf.dev"]
            elif group in ("", "pinpoint.exports.dev"):
                names = resources
            else:
                names = [f"{group}/{name}" for name in resources]
        elif found := re.match(r"\s*- ([a-z]+)\s+#", line):
            for name in names:
                granted.setdefault(name, set()).add(found.group(1))
    return granted


def test_the_rbac_table_of_the_docs_is_what_the_chart_grants() -> None:
    (rows, *_) = tables(section((ROOT / "docs" / "operations.md").read_text(), "## RBAC"))
    documented: dict[str, set[str]] = {}
    for row in rows:
        verbs = set(re.findall(r"\b(get|list|watch|create|update|patch|delete)\b", row["verbs"]))
        names = code(row["resource"])
        for name in ["kopf.dev"] if "kopf.dev" in names else names:  # either peering kind
            documented[name] = verbs
    assert documented == rbac_rules()


def test_values_schema_is_a_valid_json_schema(jsonschema: Any) -> None:
    jsonschema.Draft7Validator.check_schema(schema())


@pytest.mark.parametrize(
    "values",
    ["values.yaml", *sorted(p.relative_to(CHART).as_posix() for p in (CHART / "ci").glob("*"))],
)
def test_values_conform_to_the_schema(values: str, jsonschema: Any) -> None:
    jsonschema.validate(load_yaml(CHART / values) or {}, schema())


def test_every_value_is_in_the_schema_and_the_schema_has_no_unused_key() -> None:
    """The schema refuses unknown keys, so every default must be declared, and vice versa."""
    defaults = load_yaml(CHART / "values.yaml")
    properties = schema()["properties"]
    assert set(defaults) == set(properties) - {"global"}


@pytest.mark.parametrize(
    "values",
    [
        {"logLevel": "LOUD"},
        {"watchNamespaces": ["Not_A_Namespace"]},
        {"image": {"repository": "x", "pullPolicy": "Sometimes"}},
        {"highAvailability": {"replicas": 1}},
        {"livenessPort": -1},
        {"replicaCount": 2},
    ],
)
def test_schema_refuses_invalid_values(values: dict[str, Any], jsonschema: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, schema())


def test_the_readme_names_only_files_and_values_that_exist() -> None:
    """Paths are the chart's or the repository's (`<Kind>` standing for each kind); a dotted
    name that starts with a top-level value must be a value."""
    readme = (CHART / "README.md").read_text()
    names = re.findall(r"`([^`\s]+)`", readme)
    paths = [n for n in names if "/" in n and not n.startswith("pinpoint.exports.dev/v")]
    assert "integrations/argocd/argocd-cm.yaml" in paths
    for path in paths:
        pattern = path.replace("<Kind>", "*").rstrip("/")
        assert list(CHART.glob(pattern)) or list(ROOT.glob(pattern)), path
    values = load_yaml(CHART / "values.yaml")
    for name in (n for n in names if re.fullmatch(r"[a-z]\w*(\.\w+)*", n)):
        keys = name.split(".")
        if keys[0] not in values:
            continue
        node = values
        for key in keys:
            assert isinstance(node, dict) and key in node, f"{name}: not a value"
            node = node[key]


def test_the_readme_installs_the_argocd_checks_as_the_patch_file_says() -> None:
    readme = (CHART / "README.md").read_text()
    patch = ROOT / "integrations" / "argocd" / "argocd-cm.yaml"
    command = "kubectl -n argocd patch configmap argocd-cm --patch-file " + str(
        patch.relative_to(ROOT)
    )
    assert command in readme
    assert command in patch.read_text(), "the patch file's own instructions differ"
    keys = set(load_yaml(patch)["data"])
    key = re.search(r"`(resource\.customizations\.health\.[^`]+_)<Kind>`", readme)
    assert key and {f"{key.group(1)}{kind}" for kind in KINDS} == keys
