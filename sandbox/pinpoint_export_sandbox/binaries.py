"""Where the sandbox's Go binaries come from.

`tools/build.sh` builds them into a cache as `<name>-<version>`; the envtest variables
(`KUBEBUILDER_ASSETS`, `TEST_ASSET_<NAME>`) override that, as in controller-runtime's envtest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_DIR = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pinpoint-export-operator"
)
BIN_DIR = Path(os.environ.get("PPE_BIN_DIR", CACHE_DIR / "bin"))
NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "helm3",
    "helm4",
    "versitygw",
)


class BinaryNotFound(RuntimeError):
    pass


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name.rsplit("-v", 1)[-1]))


def find(name: str) -> Path:
    """The path of a sandbox binary: envtest override, else the newest cached build."""
    override = os.environ.get("TEST_ASSET_" + name.upper().replace("-", "_"))
    if override:
        return Path(override)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).exists():
        return Path(assets) / name
    builds = sorted(BIN_DIR.glob(f"{name}-v*"), key=_version_key)
    builds = [b for b in builds if not b.name.endswith(".tmp")]
    if not builds:
        raise BinaryNotFound(f"{name} not found in {BIN_DIR}: run `make tools`")
    return builds[-1]
