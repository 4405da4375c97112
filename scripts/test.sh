#!/usr/bin/env bash
# The whole test suite (unit + end-to-end), in .venv/. Installs what the end-to-end tests drive:
# Debian's chromium (report rendering) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# Label Studio's own virtualenv (for the end-to-end test) is installed beside govfacts' set-up, not inside
# the test run; if it cannot be installed the Label Studio tests say so and are skipped.
mkdir -p out
bash scripts/start-label-studio.sh install > out/studio-install.log 2>&1 &
studio_install=$!
bash scripts/bootstrap.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: chromium could not be installed; the browser test will be skipped" >&2
fi
wait "$studio_install" || echo "warning: Label Studio could not be installed (out/studio-install.log)" >&2
# Two workers, one file each at a time (a file's tests share fixtures and run in order); the slow
# end-to-end files go first (tests/conftest.py). GOVFACTS_TEST_WORKERS=0 runs in this process.
exec .venv/bin/python -m pytest -q -n "${GOVFACTS_TEST_WORKERS:-2}" --dist loadfile "$@"
