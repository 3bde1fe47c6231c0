#include "millrace/core/latency_histogram.h"

#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

namespace millrace {

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  if (other.max_ > max_) max_ = other.max_;
}

void LatencyHistogram::clear() {
  counts_.fill(0);
  count_ = max_ = sum_ = 0;
}

uint64_t LatencyHistogram::bucket_low(int i) {
  if (i < kSub) return static_cast<uint64_t>(i);
  const int e = i / kSub + kSubBits - 1;
  const uint64_t sub = static_cast<uint64_t>(i % kSub);
  if (e >= 64) return UINT64_MAX;
  return (static_cast<uint64_t>(kSub) + sub) << (e - kSubBits);
}

double LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The rank of the quantile: the smallest value with at least q * count values at or below it.
  uint64_t rank = static_cast<uint64_t>(std::llround(q * static_cast<double>(count_)));
  if (rank < 1) rank = 1;
  if (rank > count_) rank = count_;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const double lo = static_cast<double>(bucket_low(i));
      const double hi = i + 1 < kBuckets ? static_cast<double>(bucket_high(i)) : lo;
      const double mid = i < kSub ? lo : (lo + hi) / 2;
      return mid > static_cast<double>(max_) ? static_cast<double>(max_) : mid;
    }
  }
  return static_cast<double>(max_);
}

double StageClock::ns_per_tick_ = 1.0;

int64_t StageClock::steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void StageClock::calibrate() {
#if defined(__x86_64__)
  static std::once_flag once;
  std::call_once(once, [] {
    const int64_t t0 = steady_ns();
    const int64_t c0 = now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int64_t t1 = steady_ns();
    const int64_t c1 = now();
    if (c1 > c0 && t1 > t0) ns_per_tick_ = static_cast<double>(t1 - t0) / (c1 - c0);
  });
#endif
}

}  // namespace millrace
