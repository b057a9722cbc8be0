"""The import contracts of .importlinter hold, and each fails when an arrow is reversed.

Each case copies the operator package, adds one import that breaks a rule, and runs
lint-imports against the copy: a contract that cannot fail would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pinpoint_export_operator

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(pinpoint_export_operator.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)  # ahead of the installed (editable) package
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_the_contracts_hold() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "reversed_import", "contract"),
    [
        # The shared runtime reaching up into a resource.
        (
            "runtime/backoff.py",
            "import pinpoint_export_operator.exports.state",
            "handlers -> resources -> shared runtime -> api",
        ),
        # A resource reaching into the handlers.
        (
            "exports/state.py",
            "import pinpoint_export_operator.handlers.exports",
            "handlers -> resources -> shared runtime -> api",
        ),
        # One resource using the other's internals.
        (
            "schedules/state.py",
            "import pinpoint_export_operator.exports.reconciler",
            "handlers -> resources -> shared runtime -> api",
        ),
        # Configuration importing what it configures.
        (
            "config.py",
            "import pinpoint_export_operator.exports.copy_job",
            "handlers -> resources -> shared runtime -> api",
        ),
        ("api.py", "import pinpoint_export_sandbox", "the operator never imports its sandbox"),
        (
            "copier/layout.py",
            "import kopf",
            "the copier runs without Kopf or the Kubernetes client",
        ),
    ],
)
def test_a_reversed_arrow_breaks_a_contract(
    tmp_path: Path, module: str, reversed_import: str, contract: str
) -> None:
    copy = tmp_path / "pinpoint_export_operator"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{reversed_import}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout, result.stdout
