// A simple card-transaction stream for demos and benchmarks: cards and
// merchants chosen at random, log-normal amounts, event time advancing with
// occasional out-of-order events. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "millrace/core/time.h"

namespace millrace {

struct TransactionStreamOptions {
  uint64_t cards = 10'000;
  uint64_t merchants = 1'000;
  TimeMs start = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
  TimeMs mean_gap_ms = 10;           // between consecutive transactions
  double out_of_order = 0.02;        // fraction of events up to 3 s behind
  uint64_t seed = 1;
};

class TransactionStream {
 public:
  explicit TransactionStream(const TransactionStreamOptions& opts)
      : opts_(opts), rng_(opts.seed), time_(opts.start) {}

  // Appends the next transaction as one JSON line (with '\n').
  void next(std::string* out);

 private:
  TransactionStreamOptions opts_;
  std::mt19937_64 rng_;
  TimeMs time_;
  uint64_t n_ = 0;
};

}  // namespace millrace
