#!/usr/bin/env bash
# Create or reuse .venv/ with govfacts and its dependencies (CPU torch pinned first so that no
# CUDA build is pulled in). Re-installs only when pyproject.toml or this script changed since the last run.
# The `ray` extra is included so that the Ray Data engine and its equivalence test run everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.govfacts-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[test,ray]"
  echo "$want" > "$stamp"
fi
