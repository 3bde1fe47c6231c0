#!/usr/bin/env bash
# The demo behind `make demo`: card transactions on the embedded log, per-event
# features computed by `millrace run`, results on another log topic.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
m="$build/millrace"
dir=out/demo
rm -rf "$dir"
mkdir -p "$dir"
events=${DEMO_EVENTS:-1000000}

echo "== 1. generate $events card transactions (50k cards, 2k merchants, 2% out of order)"
"$m" generate transactions --events "$events" --cards 50000 --merchants 2000 --seed 7 > "$dir/transactions.jsonl"

echo "== 2. load them into the embedded log: topic 'transactions', 4 partitions, keyed by card"
"$m" log create "$dir/log/transactions" --partitions 4
"$m" log produce "$dir/log/transactions" --key card_id < "$dir/transactions.jsonl"
# Two malformed records: they go to the dead-letter output and the stream goes on.
printf '%s\n' '{"id": "bad0", "card_id": "c1", "merchant_id": "m1", "amount": "ten", "ts": 1767225600000}' '{"id": "bad1", "merchant_id": "m1", "amount": 3.0, "ts": 1767225600000}' |
  "$m" log produce "$dir/log/transactions"
"$m" log describe "$dir/log/transactions"

echo
echo "== 3. run the quickstart spec (apps/quickstart/spec.yaml) from the log to the log"
sed -n '/^features:/,$p' apps/quickstart/spec.yaml
"$m" run --spec apps/quickstart/spec.yaml --input "log:$dir/log/transactions" \
  --output "log:$dir/log/features" --late-output "$dir/late.jsonl" --dead-letter "$dir/dead.jsonl"

echo
echo "== 4. the first enriched events (millrace log consume $dir/log/features)"
("$m" log consume "$dir/log/features" --from-beginning || true) | head -n 3
echo
echo "== dead letters ($dir/dead.jsonl):"
cat "$dir/dead.jsonl"
echo
echo "Everything is under $dir/. Next: README.md (tour), docs/semantics.md, make test, make bench."
