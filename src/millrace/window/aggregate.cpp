#include "millrace/window/aggregate.h"

namespace millrace {

namespace {
struct Named {
  const char* name;
  AggKind kind;
};
constexpr Named kAggs[] = {
    {"count", AggKind::Count},
    {"sum", AggKind::Sum},
    {"avg", AggKind::Avg},
    {"min", AggKind::Min},
    {"max", AggKind::Max},
    {"stddev", AggKind::Stddev},
    {"count_distinct", AggKind::CountDistinct},
    {"first", AggKind::First},
    {"last", AggKind::Last},
    {"quantile", AggKind::Quantile},
    {"prev", AggKind::Prev},
    {"time_since_last", AggKind::TimeSinceLast},
    {"is_new", AggKind::IsNew},
};
}  // namespace

std::optional<AggKind> parse_agg_kind(std::string_view name) {
  for (const auto& a : kAggs)
    if (name == a.name) return a.kind;
  if (name == "mean") return AggKind::Avg;
  if (name == "distinct_count") return AggKind::CountDistinct;
  return std::nullopt;
}

const char* agg_kind_name(AggKind k) {
  for (const auto& a : kAggs)
    if (a.kind == k) return a.name;
  return "?";
}

}  // namespace millrace
