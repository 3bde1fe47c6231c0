// Reads of sliding features as of a time (read_at: what another source's
// events read, e.g. a terminal's fraud labels of the last 7, 14 and 30 days)
// against a brute force over the key's events. Windows of one field nest
// (1 min to 6 h), short ones hold a few events and long ones hundreds (past
// the walk back from the newest event and the one-pass scan), the events come
// out of order within the allowed lateness, and reads fall before, between,
// exactly on and after the events.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string_view>

#include <fmt/format.h>

#include "millrace/features/feature_plan.h"
#include "millrace/features/sliding_features.h"
#include "millrace/stream/spec.h"

namespace millrace {
namespace {

constexpr const char* kWindows[] = {"6h", "1m", "1h", "10m", "2m"};  // not in order on purpose
constexpr TimeMs kWindowMs[] = {6 * 3'600'000, 60'000, 3'600'000, 600'000, 120'000};

std::string spec_text() {
  std::string s = R"(
source:
  time: ts
  allowed_lateness: 1m
  schema: {k: string, x: double?, ts: int64}
features:
)";
  for (const char* w : kWindows) {
    s += fmt::format("  - {{name: n_{0}, key: k, agg: count, window: {0}}}\n", w);
    for (const char* a : {"sum", "min", "max", "last"})
      s += fmt::format("  - {{name: {1}_{0}, key: k, agg: {1}, field: x, window: {0}}}\n", w, a);
  }
  return s;
}

struct In {
  TimeMs t;
  bool has_x;
  double x;
};

// Sends event number I of a random stream to G: key 0 busy (an event every
// ~8 s), keys 1 and 2 calmer, times up to 50 s out of order, one event in 8
// without x, the watermark a minute behind the newest time (*max_t, updated).
// Returns the event's key and the event as the brute force keeps it.
std::pair<int, In> send_random(std::mt19937_64& rng, int i, TimeMs t0, const Schema& schema,
                               SlidingFeatureGroup& g, Event& ev, TimeMs* max_t,
                               FeatureValue* out) {
  const int k = static_cast<int>(rng() % 10 < 6 ? 0 : rng() % 2 + 1);
  const TimeMs t = t0 + i * 5'000 - static_cast<TimeMs>(rng() % 50'000);
  In e{t, rng() % 8 != 0, static_cast<double>(rng() % 10'000) / 100};
  ev.reset(schema.size());
  ev.time = t;
  ev.set_string(0, fmt::format("k{}", k));
  if (e.has_x) {
    ev.values[1].kind = FieldValue::Kind::Double;
    ev.values[1].d = e.x;
  }
  ev.values[2].kind = FieldValue::Kind::Int;
  ev.values[2].i = t;
  g.on_event(fmt::format("k{}", k), ev, *max_t - 60'000, out);
  *max_t = std::max(*max_t, t);
  return {k, e};
}

TEST(ReadAt, NestedWindowsMatchBruteForce) {
  auto parsed = parse_spec(spec_text(), "s.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  const FeaturePlan plan = plan_features(spec);
  ASSERT_EQ(plan.groups.size(), 1u);
  const FeatureGroupPlan& gp = plan.groups[0];
  SlidingFeatureGroup g(spec.source.schema, gp.features, gp.feature_outputs,
                        spec.source.allowed_lateness);
  auto index = [&](const std::string& name) {
    for (size_t i = 0; i < spec.features.size(); ++i)
      if (spec.features[i].name == name)
        return static_cast<int>(i);  // a feature's slot is its index
    ADD_FAILURE() << name;
    return 0;
  };

  constexpr TimeMs kT0 = 1'800'000'000'000;
  std::mt19937_64 rng(11);
  std::vector<std::vector<In>> seen(3);  // per key, the events so far
  std::vector<FeatureValue> out(spec.feature_slots()), vals(spec.feature_slots());
  std::vector<TimeMs> fresh(spec.feature_slots());
  SlidingFeatureGroup::ReadScratch scratch;
  Event ev;
  TimeMs max_t = kT0;
  int reads = 0, long_reads = 0;
  for (int i = 0; i < 6000; ++i) {
    const auto [k, e] = send_random(rng, i, kT0, spec.source.schema, g, ev, &max_t, out.data());
    seen[k].push_back(e);
    if (i % 7 != 0) continue;
    // Read one key as of a time near the newest event (the buffer keeps the
    // longest window back from the watermark).
    const int rk = static_cast<int>(rng() % 3);
    TimeMs at = max_t - static_cast<TimeMs>(rng() % 60'000) + static_cast<TimeMs>(rng() % 90'000);
    if (rng() % 4 == 0 && !seen[rk].empty()) at = seen[rk][rng() % seen[rk].size()].t;
    if (rng() % 3 == 0 && !seen[rk].empty()) {  // an event exactly a window back: left out
      const size_t n = seen[rk].size(), back = std::min<size_t>(n, 400);
      at = seen[rk][n - 1 - rng() % back].t + kWindowMs[rng() % std::size(kWindowMs)];
    }
    if (at < max_t - 60'000) at = max_t - 60'000;
    g.read_at(fmt::format("k{}", rk), at, &scratch, vals.data(), fresh.data());
    ++reads;
    for (size_t w = 0; w < std::size(kWindows); ++w) {
      int64_t n = 0, nx = 0;
      double sum = 0, mn = 0, mx = 0, last = 0;
      TimeMs last_t = kMinTime;
      for (const In& x : seen[rk]) {
        if (x.t > at || x.t <= at - kWindowMs[w]) continue;
        ++n;
        if (!x.has_x) continue;
        sum += x.x;
        mn = nx == 0 ? x.x : std::min(mn, x.x);
        mx = nx == 0 ? x.x : std::max(mx, x.x);
        if (x.t >= last_t) last = x.x, last_t = x.t;  // of equal times, the later arrival
        ++nx;
      }
      long_reads += n > 64;
      const std::string what =
          fmt::format("read {} key k{} at {} window {}", reads, rk, at - kT0, kWindows[w]);
      ASSERT_EQ(vals[index(fmt::format("n_{}", kWindows[w]))].as_double(), n) << what;
      ASSERT_NEAR(vals[index(fmt::format("sum_{}", kWindows[w]))].as_double(), sum,
                  1e-9 * std::max(1.0, std::abs(sum)))
          << what;
      const FeatureValue& vmin = vals[index(fmt::format("min_{}", kWindows[w]))];
      const FeatureValue& vmax = vals[index(fmt::format("max_{}", kWindows[w]))];
      const FeatureValue& vlast = vals[index(fmt::format("last_{}", kWindows[w]))];
      if (nx == 0) {
        ASSERT_TRUE(vmin.is_null()) << what;
        ASSERT_TRUE(vmax.is_null()) << what;
        ASSERT_TRUE(vlast.is_null()) << what;
      } else {
        ASSERT_EQ(vmin.as_double(), mn) << what;
        ASSERT_EQ(vmax.as_double(), mx) << what;
        ASSERT_EQ(vlast.as_double(), last) << what;
      }
    }
  }
  EXPECT_GT(reads, 500);
  EXPECT_GT(long_reads, 100) << "windows past the one-pass scan";
}

// A group of counts and sums only (as the delayed-label windows of a
// terminal): reads at or after the key's newest event start from the running
// head aggregates and step over the few rows that aged out since; reads
// before it, and reads long after (every window aged out, a search), take
// the scan. Values and freshness against a brute force.
// Two windows have no standard deviation: sums and averages there come from
// heads that no stddev shares.
TEST(ReadAt, CountsAndSumsFromTheHeadMatchBruteForce) {
  auto no_stddev = [](std::string_view w) { return w == "1m" || w == "10m"; };
  std::string text = R"(
source:
  time: ts
  allowed_lateness: 1m
  schema: {k: string, x: double?, ts: int64}
features:
)";
  for (const char* w : kWindows) {
    text += fmt::format("  - {{name: n_{0}, key: k, agg: count, window: {0}}}\n", w);
    for (const char* a : {"sum", "avg", "stddev"})
      if (std::string_view(a) != "stddev" || !no_stddev(w))
        text +=
            fmt::format("  - {{name: {1}_{0}, key: k, agg: {1}, field: x, window: {0}}}\n", w, a);
  }
  auto parsed = parse_spec(text, "s.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  const FeaturePlan plan = plan_features(spec);
  ASSERT_EQ(plan.groups.size(), 1u);
  const FeatureGroupPlan& gp = plan.groups[0];
  SlidingFeatureGroup g(spec.source.schema, gp.features, gp.feature_outputs,
                        spec.source.allowed_lateness);
  auto index = [&](const std::string& name) {
    for (size_t i = 0; i < spec.features.size(); ++i)
      if (spec.features[i].name == name) return static_cast<int>(i);
    ADD_FAILURE() << name;
    return 0;
  };
  constexpr TimeMs kT0 = 1'800'000'000'000;
  std::mt19937_64 rng(23);
  std::vector<std::vector<In>> seen(3);
  std::vector<TimeMs> newest(3, kMinTime);
  std::vector<FeatureValue> out(spec.feature_slots()), vals(spec.feature_slots());
  std::vector<TimeMs> fresh(spec.feature_slots());
  SlidingFeatureGroup::ReadScratch scratch;
  Event ev;
  TimeMs max_t = kT0;
  int reads = 0, after_newest = 0, aged_out = 0;
  for (int i = 0; i < 6000; ++i) {
    const auto [k, e] = send_random(rng, i, kT0, spec.source.schema, g, ev, &max_t, out.data());
    newest[k] = std::max(newest[k], e.t);
    seen[k].push_back(e);
    if (i % 5 != 0) continue;
    const int rk = static_cast<int>(rng() % 3);
    // Mostly at or after the key's newest event (a few seconds to a few
    // windows later), sometimes exactly a window after one of its events,
    // sometimes before its newest.
    TimeMs at = std::max(newest[rk], max_t - 60'000);
    switch (rng() % 4) {
      case 0:
        at += static_cast<TimeMs>(rng() % 120'000);
        break;
      case 1:
        at += static_cast<TimeMs>(rng() % (8 * 3'600'000));
        break;
      case 2:
        if (!seen[rk].empty())
          at = std::max(
              at, seen[rk][seen[rk].size() - 1 - rng() % std::min<size_t>(seen[rk].size(), 300)].t +
                      kWindowMs[rng() % std::size(kWindowMs)]);
        break;
      default:
        at = max_t - static_cast<TimeMs>(rng() % 60'000);
    }
    g.read_at(fmt::format("k{}", rk), at, &scratch, vals.data(), fresh.data());
    ++reads;
    after_newest += at >= newest[rk];
    for (size_t w = 0; w < std::size(kWindows); ++w) {
      int64_t n = 0, nx = 0;
      double sum = 0, sumsq = 0;
      TimeMs last_t = kMinTime, last_x_t = kMinTime;
      for (const In& x : seen[rk]) {
        if (x.t > at || x.t <= at - kWindowMs[w]) continue;
        ++n;
        last_t = std::max(last_t, x.t);
        if (!x.has_x) continue;
        sum += x.x;
        sumsq += x.x * x.x;
        last_x_t = std::max(last_x_t, x.t);
        ++nx;
      }
      aged_out += n == 0 && !seen[rk].empty();
      const std::string what =
          fmt::format("read {} key k{} at {} window {}", reads, rk, at - kT0, kWindows[w]);
      const int in = index(fmt::format("n_{}", kWindows[w]));
      ASSERT_EQ(vals[in].as_double(), n) << what;
      ASSERT_EQ(fresh[in], last_t) << what;
      const int is = index(fmt::format("sum_{}", kWindows[w]));
      const int ia = index(fmt::format("avg_{}", kWindows[w]));
      ASSERT_NEAR(vals[is].as_double(), sum, 1e-9 * std::max(1.0, std::abs(sum))) << what;
      ASSERT_EQ(fresh[is], last_x_t) << what;
      if (nx == 0) {
        ASSERT_TRUE(vals[ia].is_null()) << what;
        continue;
      }
      const double mean = sum / nx;
      const double sd = std::sqrt(std::max(0.0, sumsq / nx - mean * mean));
      ASSERT_NEAR(vals[ia].as_double(), mean, 1e-9 * std::max(1.0, std::abs(mean))) << what;
      if (no_stddev(kWindows[w])) continue;
      const int id = index(fmt::format("stddev_{}", kWindows[w]));
      ASSERT_NEAR(vals[id].as_double(), sd, 1e-6 * std::max(1.0, sd)) << what;
    }
  }
  EXPECT_GT(reads, 1000);
  EXPECT_GT(after_newest, reads / 2) << "reads starting from the head aggregates";
  EXPECT_GT(aged_out, 100) << "reads after every event of a window aged out";
}

}  // namespace
}  // namespace millrace
