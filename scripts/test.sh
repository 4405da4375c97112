#!/usr/bin/env bash
# The whole test suite (unit + end-to-end), in .venv/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
