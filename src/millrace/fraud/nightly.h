// The fraud showcase's nightly batch job: per-card history that a streaming
// pipeline reads as batch values (`batch:` in apps/fraud/fraud.yaml),
// point-in-time by `as_of`.
//
// For every night (midnight UTC) from the day after the first transaction to
// the day after the last one, over the transactions before that midnight:
//   card_stats.csv    card_id, as_of, avg_amount_30d, std_amount_30d, tx_30d,
//                     cnp_share_30d, lifetime_count
//                     (one row per card seen so far and night; the 30-day
//                     values are empty when the card had no transaction in
//                     the 30 days)
//   device_stats.csv  card_id, device_id, as_of, tx_count
//                     (card-not-present payments of the card from the device
//                     so far; a row on each night the count changed)
// as_of is the midnight plus `ready_after` (the job's run time): a value is
// used only by transactions after the job could have produced it.
#pragma once

#include <cstdint>
#include <string>

#include "millrace/core/status.h"
#include "millrace/core/time.h"

namespace millrace::fraud {

struct NightlyOptions {
  std::string transactions;  // the simulator's transactions.jsonl (or any JSONL with its fields)
  std::string out_dir;
  TimeMs ready_after = 3'600'000;  // 1 h after midnight
  TimeMs until = kMaxTime;         // only transactions before this time (and nights up to it)
};

struct NightlyStats {
  uint64_t transactions = 0, cards = 0, nights = 0;
  uint64_t card_rows = 0, device_rows = 0;
  double seconds = 0;
};

Result<NightlyStats> run_nightly(const NightlyOptions& options);

}  // namespace millrace::fraud
