#!/usr/bin/env bash
# Creates or refreshes the project's virtual environment (.venv) from requirements.lock, with
# both distributions of the repository (the operator and its sandbox) installed editable.
# uv and its package cache live outside the repository, so a fresh clone installs in seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pinpoint-export-operator
uv_version=0.13.8
uv="$cache/uv-$uv_version/bin/uv"
if [[ ! -x $uv ]]; then
  python3 -m venv "$cache/uv-$uv_version"
  "$cache/uv-$uv_version/bin/pip" install --quiet "uv==$uv_version"
fi
export UV_CACHE_DIR="$cache/uv-cache" UV_PYTHON_DOWNLOADS=never
cd "$root"
if [[ ${1:-} == --lock ]]; then
  # The two local distributions are installed editable below, never pinned.
  exec "$uv" pip compile --quiet --python-version 3.11 --universal -o requirements.lock \
    --no-emit-package pinpoint-export-operator --no-emit-package pinpoint-export-sandbox \
    requirements-dev.in
fi
if [[ ! -x .venv/bin/python ]]; then
  rm -rf .venv  # what an interrupted first run may leave: a .venv without its interpreter
  "$uv" venv --quiet --python python3 .venv
fi
# Bytecode compiled now, once: Python would otherwise compile botocore and the rest again in
# every process where PYTHONDONTWRITEBYTECODE is set (each copier, operator and emulator the
# tests start), 0.6 CPU s more for boto3 and its client alone.
"$uv" pip sync --quiet --compile-bytecode --python .venv/bin/python requirements.lock
"$uv" pip install --quiet --python .venv/bin/python --no-deps -e . -e ./sandbox
