// LatencyHistogram: counts of durations in nanoseconds in log-linear buckets
// (32 per power of two: a value is known within 1/32, about 3%), fixed size,
// no allocation when recording. Quantiles are read from the buckets (the
// middle of the bucket the quantile falls in). Not thread-safe: keep one per
// thread and merge() them.
//
// StageClock: cheap timestamps for per-event stage timing. On x86-64 it reads
// the time-stamp counter (a few ns; the TSC of current CPUs runs at a constant
// rate) and converts ticks to nanoseconds with a rate measured against
// steady_clock once per process; elsewhere it reads steady_clock.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace millrace {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSub;

  void record(uint64_t ns) {
    ++counts_[bucket_of(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
    sum_ += ns;
  }
  void merge(const LatencyHistogram& other);
  void clear();

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // The value at quantile q in [0, 1] (ns); 0 when empty.
  double quantile(double q) const;

  static int bucket_of(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int e = 63 - __builtin_clzll(v);  // >= kSubBits
    return (e - kSubBits + 1) * kSub + static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
  }
  // [low, high) of bucket i.
  static uint64_t bucket_low(int i);
  static uint64_t bucket_high(int i) { return bucket_low(i + 1); }
  uint64_t bucket_count(int i) const { return counts_[i]; }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, max_ = 0, sum_ = 0;
};

class StageClock {
 public:
  // Ticks: compare and subtract them, convert differences with to_ns().
  static int64_t now() {
#if defined(__x86_64__)
    return static_cast<int64_t>(__rdtsc());
#else
    return steady_ns();
#endif
  }
  // Measures the tick rate (about 20 ms the first time; later calls return at once).
  static void calibrate();
  static uint64_t to_ns(int64_t ticks) {
    return ticks <= 0 ? 0 : static_cast<uint64_t>(static_cast<double>(ticks) * ns_per_tick_);
  }
  static double ns_per_tick() {
    return ns_per_tick_;
  }
  static int64_t steady_ns();

 private:
  static double ns_per_tick_;
};

}  // namespace millrace
