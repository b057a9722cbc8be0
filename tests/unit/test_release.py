"""The release: the workflow publishes the image the chart installs by default, and the chart
beside it, with the version's CHANGELOG.md section as notes; CI runs `make test`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pinpoint_export_operator import __version__

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CHART = ROOT / "charts" / "pinpoint-export-operator"


def load(name: str) -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return workflow


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def script(*args: str) -> str:
    return subprocess.run(
        [ROOT / "tools" / args[0], *args[1:]], check=True, capture_output=True, text=True
    ).stdout


def test_the_default_image_name_is_the_charts() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert values["image"]["tag"] == "", "the tag defaults to appVersion"
    expected = f"{values['image']['repository']}:{chart['appVersion']}"
    assert script("image.sh", "name").strip() == expected


def test_the_release_pushes_the_default_image_only() -> None:
    workflow = load("release.yml")
    run = "\n".join(step.get("run", "") for step in steps(workflow))
    assert "image=$(tools/image.sh name)" in run
    (push,) = [s for s in steps(workflow) if s.get("uses", "").startswith("docker/build-push")]
    assert push["with"]["tags"] == "${{ steps.version.outputs.image }}"
    assert push["with"]["file"] == "operator/Dockerfile"
    assert push["with"]["push"] is True
    assert set(push["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}


def test_the_release_runs_on_version_tags_and_checks_the_tag() -> None:
    workflow = load("release.yml")
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    assert workflow[True] == {"push": {"tags": ["v*"]}}
    run = "\n".join(step.get("run", "") for step in steps(workflow))
    assert '"v$version"' in run and "exit 1" in run


def test_the_chart_goes_to_the_image_owners_registry() -> None:
    run = "\n".join(step.get("run", "") for step in steps(load("release.yml")))
    image = script("image.sh", "name")
    owner = image.split("/")[:2]  # ghcr.io, the organisation
    assert f"oci://{'/'.join(owner)}/charts" in run


def test_release_notes_are_the_versions_changelog_section() -> None:
    notes = script("release-notes.sh", __version__)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert notes.strip() and notes.strip() in changelog
    assert not re.search(r"^## ", notes, re.MULTILINE), "one section, without headings"


def test_release_notes_refuse_a_version_without_a_section() -> None:
    with pytest.raises(subprocess.CalledProcessError):
        script("release-notes.sh", "0.0.0-never")


def test_ci_runs_make_test_on_every_push_and_pull_request() -> None:
    workflow = load("ci.yml")
    assert set(workflow[True]) == {"push", "pull_request"}
    assert any(step.get("run") == ".ci/run" for step in steps(workflow))
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_actions_are_pinned_to_full_versions(name: str) -> None:
    for step in steps(load(name)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+\.\d+\.\d+", step["uses"]), step["uses"]
