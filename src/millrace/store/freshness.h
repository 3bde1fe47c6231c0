// FreshnessStats: per feature, the age of the values served (read time minus
// the event time of the newest event that contributed), as a histogram with
// four buckets per power of two (quantiles within about 10%). One writer
// thread per instance; other threads may read the counts at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/time.h"

namespace millrace {

class FreshnessStats {
 public:
  static constexpr int kBuckets = 4 * 48 + 1;

  explicit FreshnessStats(size_t features)
      : features_(features), counts_(new std::atomic<uint64_t>[features * kBuckets]) {
    for (size_t i = 0; i < features * kBuckets; ++i) counts_[i].store(0, std::memory_order_relaxed);
  }

  // Records one served value of `feature` that was `age` ms old (writer only).
  void add(size_t feature, TimeMs age) {
    std::atomic<uint64_t>& c = counts_[feature * kBuckets + bucket_of(age)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  size_t features() const { return features_; }
  uint64_t count(size_t feature, int bucket) const {
    return counts_[feature * kBuckets + bucket].load(std::memory_order_relaxed);
  }

  static int bucket_of(TimeMs age) {
    if (age <= 0) return 0;
    uint64_t a = static_cast<uint64_t>(age);
    int octave = 63 - __builtin_clzll(a);  // 2^octave <= a
    if (octave >= 47) return kBuckets - 1;
    int sub = octave >= 2 ? static_cast<int>((a >> (octave - 2)) & 3) : 0;
    return 1 + octave * 4 + sub;
  }
  // The middle of a bucket's range.
  static double bucket_value(int b) {
    if (b == 0) return 0;
    int octave = (b - 1) / 4, sub = (b - 1) % 4;
    double lo = static_cast<double>(1ull << octave) * (1 + sub / 4.0);
    double hi = static_cast<double>(1ull << octave) * (1 + (sub + 1) / 4.0);
    return octave < 2 ? static_cast<double>(1ull << octave) : (lo + hi) / 2;
  }

 private:
  size_t features_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
};

// Age quantiles of one feature over several writers' stats; -1 when nothing
// was recorded. *n receives the number of values recorded.
double freshness_quantile(const std::vector<const FreshnessStats*>& stats, size_t feature, double q,
                          uint64_t* n = nullptr);

}  // namespace millrace
