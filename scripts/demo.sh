#!/usr/bin/env bash
# The demo behind `make demo`: card-fraud detection end to end (docs/fraud.md).
# `millrace fraud demo` simulates card transactions with delayed fraud labels,
# runs the nightly batch job, backfills the training days through
# apps/fraud/fraud.yaml, trains gradient-boosted trees, streams every day
# through the pipeline with inline scoring and decisions, replays at half the
# measured throughput for latency, and prints the report (also written to
# out/fraud/report.json and out/fraud/report.html).
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
"$build/millrace" fraud demo --out out/fraud "${@:2}"
echo
echo "Open out/fraud/report.html for the plots. Next: README.md (tour), docs/fraud.md, make test, make bench."
