"""Two distributions: the operator users install, and the sandbox that proves it.

Both wheels are built from the working tree (no network: the build backend is installed), then
read: the operator's wheel carries no sandbox module and does not require what only the
sandbox needs; the version is written once, in the package, and everything else agrees.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

import pinpoint_export_sandbox
from pinpoint_export_operator import __version__

ROOT = Path(__file__).resolve().parents[2]


# What a release builds from: the tracked sources, not build/ or egg-info left in the tree.
LEFTOVERS = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "tests")


def build_wheel(files: list[Path], base: Path, out: Path) -> zipfile.ZipFile:
    """Copy `files` (relative to `base`) to a fresh directory and build a wheel there."""
    source = out / "source"
    for path in files:
        target = source / path.relative_to(base)
        if path.is_dir():
            shutil.copytree(path, target, ignore=LEFTOVERS)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def metadata(wheel: zipfile.ZipFile) -> dict[str, list[str]]:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(name).decode())
    return {
        key: message.get_all(key) or []
        for key in ("Name", "Version", "Requires-Dist", "License-File")
    }


@pytest.fixture(scope="module")
def operator_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    files = ["pyproject.toml", "README.md", "LICENSE", "operator"]
    return build_wheel([ROOT / f for f in files], ROOT, tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="module")
def sandbox_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    sandbox = ROOT / "sandbox"
    files = [
        sandbox / f for f in ("pyproject.toml", "README.md", "LICENSE", "pinpoint_export_sandbox")
    ]
    return build_wheel(files, sandbox, tmp_path_factory.mktemp("sandbox"))


def test_the_operator_wheel_holds_only_the_operator(operator_wheel: zipfile.ZipFile) -> None:
    packages = {n.split("/")[0] for n in operator_wheel.namelist() if n.endswith(".py")}
    assert packages == {"pinpoint_export_operator"}
    modules = [n for n in operator_wheel.namelist() if n.endswith(".py")]
    assert "pinpoint_export_operator/copier/command.py" in modules
    assert not [m for m in modules if "sandbox" in m or "emulator" in m or "nodeagent" in m]
    meta = metadata(operator_wheel)
    assert meta["Name"] == ["pinpoint-export-operator"]
    assert meta["Version"] == [__version__] and meta["License-File"] == ["LICENSE"]
    required = " ".join(meta["Requires-Dist"])
    assert "kopf" in required and "boto3" in required
    assert "cryptography" not in required
    entry_points = operator_wheel.read(
        next(n for n in operator_wheel.namelist() if n.endswith("entry_points.txt"))
    ).decode()
    assert "pinpoint-export-operator = pinpoint_export_operator.cli:main" in entry_points
    assert "sandbox" not in entry_points


def test_the_sandbox_wheel_holds_the_rest(sandbox_wheel: zipfile.ZipFile) -> None:
    modules = {n for n in sandbox_wheel.namelist() if n.endswith(".py")}
    assert {n.split("/")[0] for n in modules} == {"pinpoint_export_sandbox"}
    for module in ("emulator/app.py", "nodeagent/agent.py", "controlplane.py", "pki.py"):
        assert f"pinpoint_export_sandbox/{module}" in modules
    meta = metadata(sandbox_wheel)
    assert meta["Version"] == [__version__] and meta["License-File"] == ["LICENSE"]
    assert f"pinpoint-export-operator=={__version__}" in meta["Requires-Dist"]
    assert any(r.startswith("cryptography") for r in meta["Requires-Dist"])


def test_the_version_is_written_once() -> None:
    operator = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert operator["dynamic"] == ["version"] and "version" not in operator
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())["project"]
    assert sandbox["version"] == __version__ == pinpoint_export_sandbox.__version__
    assert f"pinpoint-export-operator=={__version__}" in sandbox["dependencies"]
    chart = yaml.safe_load((ROOT / "charts/pinpoint-export-operator/Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {__version__}" in changelog
