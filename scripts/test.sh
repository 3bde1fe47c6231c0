#!/usr/bin/env bash
# Runs every test: the GoogleTest suite through ctest, then the format check.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900
