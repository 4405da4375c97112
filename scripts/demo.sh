#!/usr/bin/env bash
# The main job: extract facts from the bundled sample reports with the bundled default extractor.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mkdir -p out
.venv/bin/govfacts extract data/samples --output out/facts.jsonl --errors out/errors.jsonl "$@"
