// Reads as of a time against a brute force: every aggregate, on randomized,
// out-of-order input with nulls and ties, for keys with a few events (one
// scan per field and window) and keys with hundreds in a window (feature by
// feature from the running aggregates), with TTLs, at random times.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include <fmt/format.h>

#include "millrace/features/feature_plan.h"
#include "millrace/store/embedded_store.h"
#include "millrace/stream/spec.h"

namespace millrace {
namespace {

struct Row {
  TimeMs t;
  size_t arrival;
  bool has_x;
  double x;
  bool has_s;
  std::string s;
};

std::string spec_text() {
  std::string s = R"(
source:
  time: ts
  allowed_lateness: 1h
  schema: {k: string, x: double?, s: string?, ts: int64}
features:
)";
  for (const char* w : {"10s", "1m", "10m", "1h"}) {
    s += fmt::format("  - {{name: n_{0}, key: k, agg: count, window: {0}}}\n", w);
    for (const char* a : {"sum", "avg", "stddev", "min", "max", "first", "last"})
      s += fmt::format("  - {{name: {1}_{0}, key: k, agg: {1}, field: x, window: {0}}}\n", w, a);
    s += fmt::format("  - {{name: ds_{0}, key: k, agg: count_distinct, field: s, window: {0}}}\n",
                     w);
    s += fmt::format("  - {{name: dx_{0}, key: k, agg: count_distinct, field: x, window: {0}}}\n",
                     w);
    s += fmt::format("  - {{name: ls_{0}, key: k, agg: last, field: s, window: {0}}}\n", w);
  }
  s += "  - {name: last_ttl, key: k, agg: last, field: x, window: 1h, ttl: 30s}\n";
  s += "  - {name: n_ttl, key: k, agg: count, window: 10m, ttl: 1m}\n";
  s += "  - {name: prev_x, key: k, agg: prev, field: x, window: 10m}\n";
  s += "  - {name: since, key: k, agg: time_since_last, window: 1h}\n";
  return s;
}

// The expected value of one feature over the key's rows (in time order, ties
// by arrival) as of `at`; *fresh gets the newest contributing event's time.
FeatureValue expected(const FeatureSpec& f, const std::vector<Row>& rows, TimeMs at,
                      TimeMs* fresh) {
  std::vector<const Row*> in;
  for (const Row& r : rows)
    if (r.t > at - f.window && r.t <= at) in.push_back(&r);
  const bool on_s = f.field >= 0 && f.field == 2;
  const bool on_x = f.field == 1;
  std::vector<const Row*> vals;
  for (const Row* r : in)
    if ((on_x && r->has_x) || (on_s && r->has_s) || f.field < 0) vals.push_back(r);
  FeatureValue v;
  *fresh = vals.empty() ? kMinTime : vals.back()->t;
  switch (f.agg) {
    case AggKind::Count:
      v.set_int(static_cast<int64_t>(vals.size()));
      break;
    case AggKind::Sum: {
      double sum = 0;
      for (const Row* r : vals) sum += r->x;
      v.set_double(sum);
      break;
    }
    case AggKind::Avg:
    case AggKind::Stddev: {
      if (vals.empty()) break;
      double mean = 0, sq = 0;
      for (const Row* r : vals) mean += r->x / vals.size();
      for (const Row* r : vals) sq += (r->x - mean) * (r->x - mean) / vals.size();
      v.set_double(f.agg == AggKind::Avg ? mean : std::sqrt(sq));
      break;
    }
    case AggKind::Min:
    case AggKind::Max:
      if (vals.empty()) break;
      v.set_double(vals[0]->x);
      for (const Row* r : vals)
        v.d = f.agg == AggKind::Min ? std::min(v.d, r->x) : std::max(v.d, r->x);
      break;
    case AggKind::CountDistinct: {
      std::set<std::string> d;
      for (const Row* r : vals) d.insert(on_s ? r->s : fmt::format("{}", r->x));
      v.set_int(static_cast<int64_t>(d.size()));
      break;
    }
    case AggKind::First:
    case AggKind::Last: {
      if (vals.empty()) break;
      const Row* r = f.agg == AggKind::First ? vals.front() : vals.back();
      if (on_s) {
        v.set_string(r->s);
      } else {
        v.set_double(r->x);
      }
      break;
    }
    case AggKind::Prev:
    case AggKind::TimeSinceLast:
      *fresh = in.empty() ? kMinTime : in.back()->t;
      if (in.empty()) break;
      if (f.agg == AggKind::TimeSinceLast) {
        v.set_int(at - in.back()->t);
      } else if (in.back()->has_x) {
        v.set_double(in.back()->x);
      }
      break;
    default:
      ADD_FAILURE() << "unexpected aggregate";
  }
  if (f.ttl > 0 && *fresh != kMinTime && *fresh <= at - f.ttl) v.set_null();
  return v;
}

TEST(EmbeddedStoreReads, MatchBruteForceAtRandomTimes) {
  auto parsed = parse_spec(spec_text(), "reads.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  FeaturePlan plan = plan_features(spec);
  ASSERT_EQ(plan.feature_sets.size(), 1u);
  EmbeddedStore store(spec, plan, 2);
  std::mt19937_64 rng(11);
  const TimeMs t0 = 1'767'225'600'000;
  // Keys: "hot" with ~800 events in 20 minutes (hundreds per 10-minute
  // window), others with a few; values drawn from small sets so that ties,
  // repeats and nulls occur.
  std::vector<std::string> keys = {"hot", "k1", "k2", "k3", "k4", "k5"};
  std::map<std::string, std::vector<Row>> rows;
  std::vector<std::pair<std::string, Row>> events;
  for (size_t i = 0; i < 1500; ++i) {
    std::string k = i % 2 == 0 ? "hot" : keys[1 + rng() % 5];
    Row r;
    r.t = t0 + static_cast<TimeMs>(rng() % (k == "hot" ? 1'200'000 : 3'600'000)) / 500 * 500;
    r.has_x = rng() % 5 != 0;
    r.x = static_cast<double>(rng() % 40) * 2.5 - 20;
    r.has_s = rng() % 4 != 0;
    r.s = fmt::format("m{}", rng() % 12);
    events.emplace_back(k, r);
  }
  // Mostly in time order, with a quarter of the events arriving late.
  std::sort(events.begin(), events.end(),
            [](const auto& a, const auto& b) { return a.second.t < b.second.t; });
  for (size_t i = 0; i + 1 < events.size(); ++i)
    if (rng() % 4 == 0)
      std::swap(events[i], events[i + 1 + rng() % std::min<size_t>(20, events.size() - i - 1)]);
  Event e;
  std::vector<FeatureValue> out(spec.feature_slots());
  for (size_t i = 0; i < events.size(); ++i) {
    auto& [k, r] = events[i];
    r.arrival = i;
    e.reset(spec.source.schema.size());
    e.time = r.t;
    e.set_string(0, k);
    if (r.has_x) {
      e.values[1].kind = FieldValue::Kind::Double;
      e.values[1].d = r.x;
    }
    if (r.has_s) e.set_string(2, r.s);
    e.values[3].kind = FieldValue::Kind::Int;
    e.values[3].i = r.t;
    store.group(store.worker_of(k), 0)->on_event(k, e, kMinTime, out.data());
    rows[k].push_back(r);
  }
  for (auto& [k, rs] : rows)
    std::stable_sort(rs.begin(), rs.end(), [](const Row& a, const Row& b) { return a.t < b.t; });

  FeatureVector v;
  int checked = 0, big = 0;
  for (int q = 0; q < 400; ++q) {
    const std::string& k = keys[q % keys.size()];
    const TimeMs at = t0 - 60'000 + static_cast<TimeMs>(rng() % 3'800'000);
    ASSERT_TRUE(store.read(0, k, at, &v).ok());
    ASSERT_EQ(v.names.size(), spec.features.size());
    for (size_t f = 0; f < spec.features.size(); ++f) {
      const FeatureSpec& fs = spec.features[f];
      ASSERT_EQ(v.names[f], fs.name);
      TimeMs fresh;
      FeatureValue want = expected(fs, rows[k], at, &fresh);
      const FeatureValue& got = v.values[f];
      const std::string what = fmt::format("{} of {} at t0{:+}", fs.name, k, at - t0);
      ASSERT_EQ(got.is_null(), want.is_null()) << what;
      EXPECT_EQ(v.freshness[f], fresh) << what;
      if (want.kind == FeatureValue::Kind::String) {
        EXPECT_EQ(got.s, want.s) << what;
      } else if (!want.is_null()) {
        EXPECT_NEAR(got.as_double(), want.as_double(), 1e-9 * (1 + std::fabs(want.as_double())))
            << what;
      }
      ++checked;
      if (fs.agg == AggKind::Count && want.i > 64) ++big;
    }
  }
  EXPECT_GT(checked, 10000);
  EXPECT_GT(big, 20);  // windows past the one-scan limit were read too
}

}  // namespace
}  // namespace millrace
