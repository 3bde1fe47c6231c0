#include "millrace/store/freshness.h"

#include <cmath>

namespace millrace {

double freshness_quantile(const std::vector<const FreshnessStats*>& stats, size_t feature, double q,
                          uint64_t* n) {
  uint64_t counts[FreshnessStats::kBuckets] = {};
  uint64_t total = 0;
  for (const FreshnessStats* s : stats)
    for (int b = 0; b < FreshnessStats::kBuckets; ++b) {
      uint64_t c = s->count(feature, b);
      counts[b] += c;
      total += c;
    }
  if (n) *n = total;
  if (total == 0) return -1;
  // Nearest rank: the smallest value with at least q of the values at or below it.
  double r = std::ceil(q * static_cast<double>(total));
  uint64_t rank = r < 1 ? 0 : static_cast<uint64_t>(r) - 1;
  uint64_t seen = 0;
  for (int b = 0; b < FreshnessStats::kBuckets; ++b) {
    seen += counts[b];
    if (seen > rank) return FreshnessStats::bucket_value(b);
  }
  return FreshnessStats::bucket_value(FreshnessStats::kBuckets - 1);
}

}  // namespace millrace
