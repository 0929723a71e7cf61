#!/usr/bin/env bash
# The README's test command: sets up this Debian 12 machine (apt; idempotent), builds, and runs
# every test that needs no GPU (ctest labels unit and integration; gpu tests run on the GPU machine
# through scripts/gpu-run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -f build/build.ninja ]] || cmake --preset default
cmake --build --preset default
ctest --preset default --output-on-failure "$@"
