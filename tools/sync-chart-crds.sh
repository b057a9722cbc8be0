#!/usr/bin/env bash
# Copies the API's CRDs (crds/, the source of truth) into the Helm chart's crds/, and removes
# copies of CRDs that no longer exist. The chart's Kopf peering CRDs have no top-level
# counterpart and are kept. tests/unit/test_chart.py fails until this has been run.
set -euo pipefail
shopt -s nullglob
root=$(cd "$(dirname "$0")/.." && pwd)
chart_crds=$root/charts/pinpoint-export-operator/crds
own=(kopf-peerings.yaml)
for copy in "$chart_crds"/*.yaml; do
  name=$(basename "$copy")
  if [[ ! -e $root/crds/$name && ! " ${own[*]} " =~ " $name " ]]; then
    rm -v "$copy"
  fi
done
cp -v "$root"/crds/*.yaml "$chart_crds"/
