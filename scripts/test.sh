#!/usr/bin/env bash
# Runs every test: the GoogleTest suite through ctest, then the format check.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900
if command -v clang-format >/dev/null 2>&1 && [ -d .git ]; then
  if ! git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror 2>/dev/null; then
    echo "clang-format: some files are not formatted; run 'make format'" >&2
    exit 1
  fi
  echo "clang-format: clean"
fi
