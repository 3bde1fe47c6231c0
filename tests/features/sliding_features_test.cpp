// SlidingFeatureGroup against a brute force on randomized, out-of-order
// input: every aggregate, several windows, ties, nulls, and events beyond the
// lateness bound (which the caller drops, as the runtime does).
#include "millrace/features/sliding_features.h"

#include "millrace/core/bytes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <set>

namespace millrace {
namespace {

struct Row {
  TimeMs t;
  uint64_t arrival;
  std::string key;
  double amount;  // NaN: null
  std::string merchant;
};

Schema test_schema() {
  Schema s;
  s.add({"card", FieldType::String, false});
  s.add({"amount", FieldType::Double, true});
  s.add({"merchant", FieldType::String, false});
  s.add({"ts", FieldType::Int64, false});
  return s;
}

FeatureSpec feature(const std::string& name, AggKind agg, int field, TimeMs window,
                    double q = 0.5) {
  FeatureSpec f;
  f.name = name;
  f.key_fields = {0};
  f.agg = agg;
  f.field = field;
  f.window = window;
  f.q = q;
  return f;
}

// The expected value of feature f for row e, from all accepted rows so far.
FeatureValue brute_force(const FeatureSpec& f, const Row& e, const std::vector<Row>& accepted) {
  FeatureValue v;
  std::vector<const Row*> rows;
  for (const Row& r : accepted)
    if (r.key == e.key) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](const Row* a, const Row* b) {
    return std::tie(a->t, a->arrival) < std::tie(b->t, b->arrival);
  });
  if (f.agg == AggKind::Prev || f.agg == AggKind::TimeSinceLast) {
    const Row* prev = nullptr;
    for (const Row* r : rows)
      if (std::tie(r->t, r->arrival) < std::tie(e.t, e.arrival)) prev = r;
    if (!prev || prev->t <= e.t - f.window) return v;
    if (f.agg == AggKind::TimeSinceLast) {
      v.set_int(e.t - prev->t);
    } else if (f.field == 2) {
      v.set_string(prev->merchant);
    } else if (!std::isnan(prev->amount)) {
      v.set_double(prev->amount);
    }
    return v;
  }
  if (f.agg == AggKind::IsNew) {  // no earlier event of the key in (t - window, t) had the value
    bool seen = false;
    for (const Row* r : rows)
      seen |= std::tie(r->t, r->arrival) < std::tie(e.t, e.arrival) && r->t > e.t - f.window &&
              r->merchant == e.merchant;
    v.set_bool(!seen);
    return v;
  }
  std::vector<double> xs;
  std::set<std::string> distinct;
  int64_t events = 0;
  for (const Row* r : rows) {
    if (r->t <= e.t - f.window || r->t > e.t) continue;
    ++events;
    if (f.field == 2) {
      distinct.insert(r->merchant);
      if (f.agg == AggKind::Last) v.set_string(r->merchant);  // rows are in (time, arrival) order
    } else if (!std::isnan(r->amount)) {
      xs.push_back(r->amount);
    }
  }
  double sum = 0;
  for (double x : xs) sum += x;
  switch (f.agg) {
    case AggKind::Count:
      v.set_int(f.field < 0 ? events : static_cast<int64_t>(xs.size()));
      break;
    case AggKind::CountDistinct:
      v.set_int(static_cast<int64_t>(distinct.size()));
      break;
    case AggKind::Last:
      if (f.field == 2) return v;  // set above: the newest merchant in the window
      if (!xs.empty()) v.set_double(xs.back());
      break;
    case AggKind::Sum:
      v.set_double(sum);  // 0 for no values
      break;
    default:
      if (xs.empty()) return v;
      switch (f.agg) {
        case AggKind::Sum:
          v.set_double(sum);
          break;
        case AggKind::Avg:
          v.set_double(sum / xs.size());
          break;
        case AggKind::Min:
          v.set_double(*std::min_element(xs.begin(), xs.end()));
          break;
        case AggKind::Max:
          v.set_double(*std::max_element(xs.begin(), xs.end()));
          break;
        case AggKind::First:
          v.set_double(xs.front());
          break;
        case AggKind::Last:
          v.set_double(xs.back());
          break;
        case AggKind::Stddev: {
          double mean = sum / xs.size(), ss = 0;
          for (double x : xs) ss += (x - mean) * (x - mean);
          v.set_double(std::sqrt(ss / xs.size()));
          break;
        }
        case AggKind::Quantile: {
          std::sort(xs.begin(), xs.end());
          v.set_double(xs[static_cast<size_t>(std::floor(f.q * (xs.size() - 1)))]);
          break;
        }
        default:
          break;
      }
  }
  return v;
}

struct Scenario {
  uint32_t seed;
  int events;
  int keys;
  TimeMs step;
  double disorder;       // fraction sent back in time
  TimeMs max_delay;      // how far back
  TimeMs ooo, lateness;  // watermark settings
  double null_rate;
  int restore_every = 0;  // > 0: every n events, continue on a group restored from a snapshot
  // Keys longer than a key state holds inline, and features returning the
  // merchant's string (the state keeps the strings).
  bool long_keys_and_text = false;
  // Features of every kind in an irregular order, most on a window of its
  // own (a window with only a count of events, one with only a count of a
  // field's values, sums without a standard deviation) instead of the full
  // set per window.
  bool mixed_windows = false;
};

void run_scenario(const Scenario& sc) {
  Schema schema = test_schema();
  std::vector<FeatureSpec> feats;
  const TimeMs windows[] = {1000, 30'000, 600'000};
  for (TimeMs w : windows) {
    std::string s = std::to_string(w);
    feats.push_back(feature("count_" + s, AggKind::Count, -1, w));
    feats.push_back(feature("count_amount_" + s, AggKind::Count, 1, w));
    feats.push_back(feature("sum_" + s, AggKind::Sum, 1, w));
    feats.push_back(feature("avg_" + s, AggKind::Avg, 1, w));
    feats.push_back(feature("min_" + s, AggKind::Min, 1, w));
    feats.push_back(feature("max_" + s, AggKind::Max, 1, w));
    feats.push_back(feature("std_" + s, AggKind::Stddev, 1, w));
    feats.push_back(feature("distinct_" + s, AggKind::CountDistinct, 2, w));
    feats.push_back(feature("first_" + s, AggKind::First, 1, w));
    feats.push_back(feature("last_" + s, AggKind::Last, 1, w));
    feats.push_back(feature("p90_" + s, AggKind::Quantile, 1, w, 0.9));
    feats.push_back(feature("prev_" + s, AggKind::Prev, 1, w));
    feats.push_back(feature("since_" + s, AggKind::TimeSinceLast, -1, w));
    feats.push_back(feature("new_merchant_" + s, AggKind::IsNew, 2, w));
    if (sc.long_keys_and_text) {
      feats.push_back(feature("prev_merchant_" + s, AggKind::Prev, 2, w));
      feats.push_back(feature("last_merchant_" + s, AggKind::Last, 2, w));
    }
  }
  if (sc.mixed_windows) {
    feats.clear();
    feats.push_back(feature("count_1000", AggKind::Count, -1, 1000));  // only a count of events
    feats.push_back(feature("avg_30000", AggKind::Avg, 1, 30'000));    // sums, no stddev
    feats.push_back(feature("count_amount_5000", AggKind::Count, 1, 5000));  // a count of values
    feats.push_back(feature("max_30000", AggKind::Max, 1, 30'000));
    feats.push_back(feature("last_1000", AggKind::Last, 1, 1000));
    feats.push_back(feature("distinct_120000", AggKind::CountDistinct, 2, 120'000));
    feats.push_back(feature("sum_30000", AggKind::Sum, 1, 30'000));
    feats.push_back(feature("first_5000", AggKind::First, 1, 5000));
    feats.push_back(feature("std_600000", AggKind::Stddev, 1, 600'000));  // sums with squares
    feats.push_back(feature("p90_120000", AggKind::Quantile, 1, 120'000, 0.9));
    feats.push_back(feature("sum_120000", AggKind::Sum, 1, 120'000));  // sums, no stddev
    feats.push_back(feature("count_30000", AggKind::Count, -1, 30'000));
    feats.push_back(feature("min_600000", AggKind::Min, 1, 600'000));
    feats.push_back(feature("avg_600000", AggKind::Avg, 1, 600'000));
    feats.push_back(feature("new_merchant_120000", AggKind::IsNew, 2, 120'000));
    feats.push_back(feature("since_5000", AggKind::TimeSinceLast, -1, 5000));
  }
  std::vector<int> outputs(feats.size());
  for (size_t i = 0; i < feats.size(); ++i) outputs[i] = static_cast<int>(i);
  auto group_ptr = std::make_unique<SlidingFeatureGroup>(schema, feats, outputs, sc.lateness);
  SlidingFeatureGroup* g = group_ptr.get();

  std::mt19937_64 rng(sc.seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Row> accepted;
  std::vector<FeatureValue> out(feats.size());
  TimeMs clock = 1'700'000'000'000, max_seen = kMinTime;
  int checked = 0, late = 0, out_of_order = 0;
  for (int i = 0; i < sc.events; ++i) {
    clock += static_cast<TimeMs>(u(rng) * sc.step);
    Row r;
    r.t = clock;
    if (u(rng) < sc.disorder) r.t -= 1 + static_cast<TimeMs>(u(rng) * sc.max_delay);
    r.arrival = static_cast<uint64_t>(i);
    r.key = "k" + std::to_string(static_cast<int>(u(rng) * sc.keys));
    // Half the keys longer than 15 bytes (held on the heap), half not.
    if (sc.long_keys_and_text && r.key.back() % 2) r.key += "-a-longer-card-number";
    r.amount = u(rng) < sc.null_rate ? std::nan("") : std::round(u(rng) * 10000) / 100;
    r.merchant = "m" + std::to_string(static_cast<int>(u(rng) * 5));
    TimeMs wm = max_seen == kMinTime ? kMinTime : max_seen - sc.ooo;
    if (wm != kMinTime && r.t < wm - sc.lateness) {
      ++late;
      continue;  // late: the runtime never hands it to the features
    }
    Event ev;
    ev.reset(schema.size());
    ev.time = r.t;
    ev.set_string(0, r.key);
    if (!std::isnan(r.amount)) {
      ev.values[1].kind = FieldValue::Kind::Double;
      ev.values[1].d = r.amount;
    }
    ev.set_string(2, r.merchant);
    ev.values[3].kind = FieldValue::Kind::Int;
    ev.values[3].i = r.t;
    accepted.push_back(r);
    if (sc.restore_every > 0 && i % sc.restore_every == sc.restore_every - 1) {
      std::string bytes;
      ByteWriter w(&bytes);
      g->snapshot(w);
      auto restored = std::make_unique<SlidingFeatureGroup>(schema, feats, outputs, sc.lateness);
      ByteReader rd(bytes);
      ASSERT_TRUE(restored->restore(rd)) << "event " << i << " seed " << sc.seed;
      ASSERT_EQ(restored->keys(), g->keys());
      group_ptr = std::move(restored);
      g = group_ptr.get();
    }
    g->on_event(r.key, ev, wm, out.data());
    if (r.t < max_seen) ++out_of_order;
    max_seen = std::max(max_seen, r.t);
    TimeMs wm_after = max_seen - sc.ooo;
    g->expire(wm_after);
    for (size_t f = 0; f < feats.size(); ++f) {
      FeatureValue want = brute_force(feats[f], r, accepted);
      const FeatureValue& got = out[f];
      ASSERT_EQ(got.is_null(), want.is_null())
          << feats[f].name << " event " << i << " seed " << sc.seed;
      if (want.is_null()) continue;
      if (want.kind == FeatureValue::Kind::String) {
        ASSERT_EQ(got.kind, FeatureValue::Kind::String) << feats[f].name << " event " << i;
        ASSERT_EQ(got.s, want.s) << feats[f].name << " event " << i << " seed " << sc.seed;
        ++checked;
        continue;
      }
      double a = want.as_double(), b = got.as_double();
      double tol = feats[f].agg == AggKind::Quantile ? 0.0101 : 1e-9;
      ASSERT_LE(std::fabs(a - b), tol * std::max(1.0, std::fabs(a)))
          << feats[f].name << " event " << i << " seed " << sc.seed << ": want " << a << " got "
          << b;
      ++checked;
    }
  }
  EXPECT_GT(checked, sc.events);  // the scenario really exercised the features
  if (sc.disorder > 0) {
    EXPECT_GT(out_of_order, 0);
  }
  // Once the watermark passes every key's last event + lateness + longest
  // window, all state is freed.
  g->expire(max_seen + sc.lateness + 600'000);
  EXPECT_EQ(g->keys(), 0u);
}

TEST(SlidingFeatures, InOrderMatchesBruteForce) {
  run_scenario({1, 3000, 7, 400, 0.0, 0, 1000, 0, 0.05});
}

TEST(SlidingFeatures, OutOfOrderWithinBoundsMatchesBruteForce) {
  for (uint32_t seed = 2; seed < 6; ++seed) {
    run_scenario({seed, 2000, 5, 500, 0.3, 4000, 5000, 0, 0.1});
  }
}

TEST(SlidingFeatures, BeyondBoundsAcceptedWithinLatenessMatchesBruteForce) {
  for (uint32_t seed = 10; seed < 14; ++seed) {
    run_scenario({seed, 2000, 4, 800, 0.25, 120'000, 2000, 60'000, 0.05});
  }
}

TEST(SlidingFeatures, DenseTiesMatchBruteForce) {
  run_scenario({20, 2000, 3, 3, 0.2, 10, 5, 5, 0.0});
}

// Keys idle longer than the longest window (600 s) are freed between their
// events, so most events find the state of a freed key reused for theirs.
TEST(SlidingFeatures, ReusedStatesOfFreedKeysMatchBruteForce) {
  for (uint32_t seed = 30; seed < 32; ++seed) {
    run_scenario({seed, 1500, 40, 40'000, 0.2, 30'000, 5'000, 10'000, 0.05});
  }
}

// Windows of a few events (30 s: about 6 per key) cross between the sizes
// count_distinct scans and those it keeps a value map for, in both
// directions, with snapshots restored on the way.
TEST(SlidingFeatures, DistinctValuesAcrossScanAndMapSizesMatchBruteForce) {
  for (uint32_t seed = 40; seed < 42; ++seed) {
    run_scenario({seed, 1500, 10, 1000, 0.2, 8'000, 5'000, 10'000, 0.05, 97});
  }
}

// Keys of both lengths (inline in the key's state or on the heap) and string
// values kept per event (prev/last of a string field), with keys freed and
// reused and snapshots restored on the way.
TEST(SlidingFeatures, LongKeysAndStringValuesMatchBruteForce) {
  Scenario sc{50, 1500, 12, 20'000, 0.2, 8'000, 5'000, 10'000, 0.05, 211};
  sc.long_keys_and_text = true;
  run_scenario(sc);
}

// Features of every kind on windows of their own (a window holding only a count
// of events, one only a count of a field's values, sums without a standard
// deviation): heads that share no sums, in order, out of
// order and beyond bounds, with snapshots restored on the way.
TEST(SlidingFeatures, EveryKindOnWindowsOfItsOwnMatchBruteForce) {
  for (uint32_t seed = 60; seed < 63; ++seed) {
    Scenario sc{seed, 2000, 8, 3'000, 0.25, 60'000, 5'000, 30'000, 0.05, 131};
    sc.mixed_windows = true;
    run_scenario(sc);
  }
}

TEST(SlidingFeatures, StateIsFreedForIdleKeysOnly) {
  Schema schema = test_schema();
  SlidingFeatureGroup group(schema, {feature("c", AggKind::Count, -1, 60'000)}, {0}, 0);
  std::vector<FeatureValue> out(1);
  auto send = [&](const std::string& key, TimeMs t, TimeMs wm) {
    Event ev;
    ev.reset(schema.size());
    ev.time = t;
    ev.set_string(0, key);
    ev.set_string(2, "m");
    group.on_event(key, ev, wm, out.data());
    return out[0].i;
  };
  EXPECT_EQ(send("a", 1000, kMinTime), 1);
  EXPECT_EQ(send("b", 50'000, 1000), 1);
  group.expire(60'999);  // a's event at 1000 can still be in a window ending at 60999
  EXPECT_EQ(group.keys(), 2u);
  group.expire(61'000);
  EXPECT_EQ(group.keys(), 1u);  // a is gone, b stays
  EXPECT_EQ(send("a", 70'000, 61'000), 1);
  EXPECT_EQ(send("b", 100'000, 61'000), 2);
}

}  // namespace
}  // namespace millrace
