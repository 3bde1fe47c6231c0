#!/usr/bin/env bash
# Runs every benchmark in bench/ (each prints its figures beside a baseline
# measured in the same run, as a ratio). Machines are shared and noisy:
# compare ratios, not absolute figures.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
for b in "$build"/*_bench; do
  [[ -x "$b" ]] || continue
  echo "=== $(basename "$b")"
  "$b"
  echo
done
