// The aggregations millrace computes, shared by per-event sliding features and
// windowed results, and the type of value each one produces.
#pragma once

#include <optional>
#include <string_view>

namespace millrace {

enum class AggKind {
  Count,  // number of events (of non-null `field` values when a field is named)
  Sum,
  Avg,
  Min,
  Max,
  Stddev,         // population standard deviation
  CountDistinct,  // exact number of distinct values
  First,          // value of the earliest event by event time (ties: first arrived)
  Last,           // value of the latest event by event time (ties: last arrived)
  Quantile,       // relative-error sketch, see quantile_sketch.h
  Prev,           // per-event helper: the field of the key's previous event
  TimeSinceLast,  // per-event helper: ms since the key's previous event
  IsNew,          // per-event helper: no earlier event of the key in the window had this value
};

std::optional<AggKind> parse_agg_kind(std::string_view name);
const char* agg_kind_name(AggKind k);

// True for aggregates over a numeric field (sum, avg, min, max, stddev, quantile).
inline bool agg_needs_number(AggKind k) {
  return k == AggKind::Sum || k == AggKind::Avg || k == AggKind::Min || k == AggKind::Max ||
         k == AggKind::Stddev || k == AggKind::Quantile;
}
inline bool agg_needs_field(AggKind k) {
  return k != AggKind::Count && k != AggKind::TimeSinceLast;
}
// True for aggregates whose result is an integer (count, count_distinct, time_since_last).
inline bool agg_is_integer(AggKind k) {
  return k == AggKind::Count || k == AggKind::CountDistinct || k == AggKind::TimeSinceLast;
}
// True for aggregates that return a value of the field itself (first, last, prev).
inline bool agg_returns_field(AggKind k) {
  return k == AggKind::First || k == AggKind::Last || k == AggKind::Prev;
}

}  // namespace millrace
