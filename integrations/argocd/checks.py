"""The Argo CD health checks of the project's kinds, in upstream's layout
(`<group>/<Kind>/health.lua`, as argo-cd's `resource_customizations/`).

`.venv/bin/python integrations/argocd/checks.py` writes `argocd-cm.yaml`, the form users
install, from the `.lua` sources. The tests import this file to run a check the way Argo CD does
(`health`) and to keep `argocd-cm.yaml` current (`render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import lupa.lua51  # Argo CD runs health checks in gopher-lua, a Lua 5.1

HERE = Path(__file__).resolve().parent
ARGOCD_CM = HERE / "argocd-cm.yaml"
# Argo CD refuses any other hs.status (health.HealthStatusCode).
STATUSES = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})
HEADER = """\
# Argo CD health checks for PinpointExport and PinpointExportSchedule. Generated from
# integrations/argocd/<group>/<Kind>/health.lua by integrations/argocd/checks.py: do not edit.
# Merge into Argo CD's argocd-cm:
#   kubectl -n argocd patch configmap argocd-cm --patch-file integrations/argocd/argocd-cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


class Check(NamedTuple):
    group: str
    kind: str
    directory: Path

    @property
    def script(self) -> str:
        return (self.directory / "health.lua").read_text()

    @property
    def key(self) -> str:
        """The argocd-cm key Argo CD reads this check from."""
        return f"resource.customizations.health.{self.group}_{self.kind}"


class Health(NamedTuple):
    status: str
    message: str | None


def checks() -> list[Check]:
    return [
        Check(path.parent.parent.name, path.parent.name, path.parent)
        for path in sorted(HERE.glob("*/*/health.lua"))
    ]


def render() -> str:
    """argocd-cm.yaml: each script as a literal block, byte for byte."""
    text = HEADER
    for check in checks():
        body = "".join(f"    {line}".rstrip() + "\n" for line in check.script.splitlines())
        text += f"  {check.key}: |\n{body}"
    return text


def health(script: str, obj: Mapping[str, Any]) -> Health:
    """Run a health check as Argo CD does: the object as the global table `obj` (lists
    1-based), the table the script returns as the health."""
    lua = lupa.lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(script)
    if hs is None or hs["status"] not in STATUSES:
        raise ValueError(f"health check returned no valid hs.status: {hs and hs['status']!r}")
    return Health(hs["status"], hs["message"])


if __name__ == "__main__":
    ARGOCD_CM.write_text(render())
