#include "millrace/window/quantile_sketch.h"

#include <algorithm>
#include <cstddef>

namespace millrace {

void QuantileSketch::Store::add(int32_t index, int32_t delta) {
  if (counts.empty()) {
    offset = index;
    counts.assign(1, 0);
  } else if (index < offset) {
    counts.insert(counts.begin(), static_cast<size_t>(offset - index), 0);
    offset = index;
  } else if (index >= offset + static_cast<int32_t>(counts.size())) {
    counts.resize(static_cast<size_t>(index - offset) + 1, 0);
  }
  counts[static_cast<size_t>(index - offset)] += delta;
  // Trim empty buckets at both ends so memory follows the live range.
  size_t lo = 0;
  while (lo < counts.size() && counts[lo] == 0) ++lo;
  if (lo == counts.size()) {
    std::vector<int32_t>().swap(counts);  // release: memory follows the live range
    return;
  }
  size_t hi = counts.size();
  while (counts[hi - 1] == 0) --hi;
  if (hi < counts.size()) counts.resize(hi);
  if (lo > 0) {
    counts.erase(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(lo));
    offset += static_cast<int32_t>(lo);
  }
}

void QuantileSketch::update(double x, int32_t delta) {
  if (std::isnan(x)) return;
  count_ += delta;
  if (std::fabs(x) < kZero) {
    zero_ += delta;
  } else if (x > 0) {
    pos_.add(index_of(x), delta);
  } else {
    neg_.add(index_of(-x), delta);
  }
}

double QuantileSketch::quantile(double q) const {
  if (count_ <= 0) return std::nan("");
  q = std::clamp(q, 0.0, 1.0);
  int64_t rank = static_cast<int64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  int64_t seen = 0;
  // Negative values, most negative first: highest magnitude bucket first.
  for (size_t i = neg_.counts.size(); i-- > 0;) {
    seen += neg_.counts[i];
    if (seen > rank) return -value_of(neg_.offset + static_cast<int32_t>(i));
  }
  seen += zero_;
  if (seen > rank) return 0.0;
  for (size_t i = 0; i < pos_.counts.size(); ++i) {
    seen += pos_.counts[i];
    if (seen > rank) return value_of(pos_.offset + static_cast<int32_t>(i));
  }
  return pos_.counts.empty() ? 0.0
                             : value_of(pos_.offset + static_cast<int32_t>(pos_.counts.size()) - 1);
}

void QuantileSketch::merge(const QuantileSketch& other) {
  for (size_t i = 0; i < other.pos_.counts.size(); ++i)
    if (other.pos_.counts[i])
      pos_.add(other.pos_.offset + static_cast<int32_t>(i), other.pos_.counts[i]);
  for (size_t i = 0; i < other.neg_.counts.size(); ++i)
    if (other.neg_.counts[i])
      neg_.add(other.neg_.offset + static_cast<int32_t>(i), other.neg_.counts[i]);
  zero_ += other.zero_;
  count_ += other.count_;
}

void QuantileSketch::save(ByteWriter& w) const {
  for (const Store* st : {&pos_, &neg_}) {
    w.u32(static_cast<uint32_t>(st->offset));
    w.u32(static_cast<uint32_t>(st->counts.size()));
    w.raw(st->counts.data(), st->counts.size() * sizeof(int32_t));
  }
  w.i64(zero_);
  w.i64(count_);
}

bool QuantileSketch::load(ByteReader& r) {
  for (Store* st : {&pos_, &neg_}) {
    st->offset = static_cast<int32_t>(r.u32());
    uint32_t n = r.count(sizeof(int32_t));
    st->counts.resize(n);
    r.raw(st->counts.data(), n * sizeof(int32_t));
  }
  zero_ = r.i64();
  count_ = r.i64();
  return !r.failed();
}

}  // namespace millrace
