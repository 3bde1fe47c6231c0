// QuantileSketch: a relative-error quantile sketch over a multiset of doubles
// that supports removal, so it can slide (values leave as they age out) and
// merge (window panes).
//
// Values are counted in logarithmic buckets: bucket i holds the values x with
// gamma^(i-1) < |x| <= gamma^i, gamma = (1 + a) / (1 - a), and answers with
// 2 gamma^i / (gamma + 1). Guarantee: quantile(q) returns a value within a
// relative error `a` (default 1%) of the exact q-quantile, defined as the
// element of rank floor(q * (n - 1)) (0-based) of the sorted values. Zero and
// values with |x| < 1e-9 are counted exactly as 0. Memory: one 32-bit counter
// per bucket between the smallest and largest magnitude seen (about 1,000
// buckets span nine decades at a = 1%).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "millrace/core/bytes.h"

namespace millrace {

class QuantileSketch {
 public:
  explicit QuantileSketch(double relative_accuracy = 0.01)
      : gamma_ln_(std::log((1 + relative_accuracy) / (1 - relative_accuracy))) {}

  void add(double x) { update(x, +1); }
  void remove(double x) { update(x, -1); }
  int64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }

  // The q-quantile (0 <= q <= 1); NaN when empty.
  double quantile(double q) const;

  void merge(const QuantileSketch& other);
  void clear() {
    pos_.clear();
    neg_.clear();
    zero_ = 0;
    count_ = 0;
  }
  // Snapshot encoding (checkpoints): the counters, exactly.
  void save(ByteWriter& w) const;
  // Replaces the contents with a saved sketch; false when the input is damaged.
  bool load(ByteReader& r);
  size_t memory_bytes() const {
    return sizeof(*this) + (pos_.counts.capacity() + neg_.counts.capacity()) * sizeof(int32_t);
  }

 private:
  struct Store {
    int32_t offset = 0;  // bucket index of counts[0]
    std::vector<int32_t> counts;
    void clear() { counts.clear(); }
    void add(int32_t index, int32_t delta);
  };
  static constexpr double kZero = 1e-9;
  int32_t index_of(double magnitude) const {
    return static_cast<int32_t>(std::ceil(std::log(magnitude) / gamma_ln_));
  }
  double value_of(int32_t index) const {
    double gamma = std::exp(gamma_ln_);
    return 2.0 * std::exp(index * gamma_ln_) / (gamma + 1.0);
  }
  void update(double x, int32_t delta);

  double gamma_ln_;
  Store pos_, neg_;
  int64_t zero_ = 0;
  int64_t count_ = 0;
};

}  // namespace millrace
