// Reads from other threads while the worker writes, without locks: every
// vector a reader gets must be exactly one the key had between two of the
// worker's events, and a later read of the key must not go back to an earlier
// one. The expected vectors come from a second group fed the same events on
// one thread, read after each event. A torn read (rows from one event and
// head sums from another, a half-written row, a grown buffer's old array)
// matches none of them. Hot keys take most events (readers and the worker
// meet on them); cold keys get one event each and expire, so key states are
// retired and reused while readers may hold them (the sanitizer build checks
// that no freed memory is read).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "millrace/features/feature_plan.h"
#include "millrace/store/embedded_store.h"
#include "millrace/stream/spec.h"

namespace millrace {
namespace {

std::string spec_text() {
  std::string s = R"(
source:
  time: ts
  allowed_lateness: 1m
  schema: {k: string, x: double?, s: string?, ts: int64}
features:
)";
  for (const char* w : {"1m", "10m", "1h"}) {
    s += fmt::format("  - {{name: n_{0}, key: k, agg: count, window: {0}}}\n", w);
    for (const char* a : {"sum", "avg", "stddev", "min", "max", "first", "last"})
      s += fmt::format("  - {{name: {1}_{0}, key: k, agg: {1}, field: x, window: {0}}}\n", w, a);
    s += fmt::format("  - {{name: ds_{0}, key: k, agg: count_distinct, field: s, window: {0}}}\n",
                     w);
  }
  s += "  - {name: prev_x, key: k, agg: prev, field: x, window: 1h}\n";
  s += "  - {name: since, key: k, agg: time_since_last, window: 1h}\n";
  return s;
}

struct Vec {
  std::vector<FeatureValue> values;
  std::vector<TimeMs> fresh;
};

bool same(const FeatureValue& a, const FeatureValue& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case FeatureValue::Kind::Double:
      return std::memcmp(&a.d, &b.d, sizeof(double)) == 0;
    case FeatureValue::Kind::String:
      return a.s == b.s;
    case FeatureValue::Kind::Null:
      return true;
    default:
      return a.i == b.i;
  }
}

bool same(const FeatureVector& got, const Vec& want) {
  if (got.values.size() != want.values.size()) return false;
  for (size_t i = 0; i < want.values.size(); ++i)
    if (!same(got.values[i], want.values[i]) || got.freshness[i] != want.fresh[i]) return false;
  return true;
}

struct Input {
  std::string key;
  TimeMs t;
  bool has_x;
  double x;
  std::string s;
};

TEST(ConcurrentReads, EveryReadIsAStateBetweenTwoEventsOfTheWorker) {
  auto parsed = parse_spec(spec_text(), "s.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const PipelineSpec& spec = parsed.value();
  const FeaturePlan plan = plan_features(spec);
  ASSERT_EQ(plan.groups.size(), 1u);
  const FeatureGroupPlan& gp = plan.groups[0];
  const std::vector<int>& slots = plan.feature_sets[0].features;
  const size_t nf = slots.size();

  // Three hours of events, 900 ms apart with up to 30 s of disorder: 60% on
  // four hot keys, the rest on cold keys of one event each.
  constexpr TimeMs kT0 = 1'800'000'000'000;
  constexpr int kEvents = 12'000, kHot = 4;
  std::mt19937_64 rng(7);
  std::vector<Input> in;
  int cold = 0;
  for (int i = 0; i < kEvents; ++i) {
    Input e;
    e.key = rng() % 10 < 6 ? fmt::format("hot{}", rng() % kHot) : fmt::format("cold{}", cold++);
    e.t = kT0 + i * 900 - static_cast<TimeMs>(rng() % 30'000);
    e.has_x = rng() % 10 != 0;
    e.x = static_cast<double>(rng() % 100'000) / 100;
    e.s = fmt::format("m{}", rng() % 20);
    in.push_back(e);
  }
  // Hot keys are read as of three times, cold keys as of their event's time.
  const TimeMs ats[] = {kT0 + 3'600'000, kT0 + 7'200'000, kT0 + kEvents * 900};

  Event ev;
  auto make_event = [&](const Input& e) {
    ev.reset(spec.source.schema.size());
    ev.time = e.t;
    ev.set_string(0, e.key);
    if (e.has_x) {
      ev.values[1].kind = FieldValue::Kind::Double;
      ev.values[1].d = e.x;
    }
    ev.set_string(2, e.s);
    ev.values[3].kind = FieldValue::Kind::Int;
    ev.values[3].i = e.t;
    return &ev;
  };
  // Drives a group through the input as a worker does: the watermark trails
  // the newest time by 30 s, keys expire every 64 events. after(i) runs after
  // event i.
  auto drive = [&](SlidingFeatureGroup* g, auto&& after) {
    std::vector<FeatureValue> out(spec.features.size());
    TimeMs max_t = kMinTime;
    for (int i = 0; i < kEvents; ++i) {
      const TimeMs wm = max_t == kMinTime ? kMinTime : max_t - 30'000;
      g->on_event(in[i].key, *make_event(in[i]), wm, out.data());
      max_t = std::max(max_t, in[i].t);
      if (i % 64 == 63) g->expire(max_t - 30'000);
      after(i);
    }
  };

  // The expected vectors: per hot key and read time, the vector after each
  // of the key's events (index 0: before its first); per cold key, the one
  // after its event.
  SlidingFeatureGroup ref(spec.source.schema, gp.features, gp.feature_outputs,
                          spec.source.allowed_lateness);
  SlidingFeatureGroup::ReadScratch scratch;
  std::vector<FeatureValue> vals(spec.feature_slots());
  std::vector<TimeMs> fresh(spec.feature_slots());
  auto ref_read = [&](const std::string& key, TimeMs at) {
    ref.read_at(key, at, &scratch, vals.data(), fresh.data());
    Vec v;
    for (int s : slots) {
      v.values.push_back(vals[s]);
      v.fresh.push_back(fresh[s]);
    }
    return v;
  };
  std::vector<std::vector<std::vector<Vec>>> hot(kHot, std::vector<std::vector<Vec>>(3));
  for (int k = 0; k < kHot; ++k)
    for (int a = 0; a < 3; ++a) hot[k][a].push_back(ref_read(fmt::format("hot{}", k), ats[a]));
  std::vector<Vec> cold_after(cold);
  std::vector<TimeMs> cold_t(cold);
  const Vec empty = ref_read("nobody", kT0);
  drive(&ref, [&](int i) {
    const std::string& key = in[i].key;
    if (key[0] == 'h') {
      const int k = key[3] - '0';
      for (int a = 0; a < 3; ++a) hot[k][a].push_back(ref_read(key, ats[a]));
    } else {
      cold_after[std::stoi(key.substr(4))] = ref_read(key, in[i].t);
      cold_t[std::stoi(key.substr(4))] = in[i].t;
    }
  });

  EmbeddedStore store(spec, plan, 1);
  store.enable_concurrent_reads();
  std::atomic<bool> done{false};
  std::atomic<int> started{0}, written_cold{0};
  std::atomic<int64_t> reads{0}, hot_moves{0};
  std::vector<std::string> failures[2];
  auto reader = [&](int id) {
    std::mt19937_64 r(100 + id);
    std::vector<size_t> seen(kHot * 3, 0);  // index of the last vector matched
    FeatureVector v;
    started.fetch_add(1);
    while (!done.load(std::memory_order_relaxed) && failures[id].size() < 5) {
      if (r() % 4 != 0) {
        const int k = static_cast<int>(r() % kHot), a = static_cast<int>(r() % 3);
        const std::string key = fmt::format("hot{}", k);
        ASSERT_TRUE(store.read(0, key, ats[a], &v).ok());
        const auto& want = hot[k][a];
        size_t j = seen[k * 3 + a];
        while (j < want.size() && !same(v, want[j])) ++j;
        if (j == want.size()) {
          failures[id].push_back(fmt::format("{} at {}: matches no state at or after #{}", key,
                                             ats[a], seen[k * 3 + a]));
        } else {
          hot_moves += j != seen[k * 3 + a];
          seen[k * 3 + a] = j;
        }
      } else {
        const int n = written_cold.load(std::memory_order_acquire);
        if (n == 0) continue;
        const int c = static_cast<int>(r() % n);
        const std::string key = fmt::format("cold{}", c);
        // Its event is in (written before the count moved); it may have
        // expired since: one event, or none.
        ASSERT_TRUE(store.read(0, key, cold_t[c], &v).ok());
        if (!same(v, cold_after[c]) && !same(v, empty))
          failures[id].push_back(fmt::format("{}: neither its one event nor none", key));
      }
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread r0(reader, 0), r1(reader, 1);
  while (started.load() < 2) std::this_thread::yield();
  drive(store.group(0, 0), [&](int i) {
    if (in[i].key[0] == 'c') written_cold.store(std::stoi(in[i].key.substr(4)) + 1);
  });
  // Reads of the final state once the worker is done.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  done = true;
  r0.join();
  r1.join();
  for (const auto& f : failures)
    for (const std::string& m : f) ADD_FAILURE() << m;
  EXPECT_GT(reads.load(), 1000);
  // The readers saw the hot keys move (they ran while the worker wrote).
  EXPECT_GT(hot_moves.load(), 10);
  // And the store ends where the reference does.
  FeatureVector v;
  for (int k = 0; k < kHot; ++k)
    for (int a = 0; a < 3; ++a) {
      ASSERT_TRUE(store.read(0, fmt::format("hot{}", k), ats[a], &v).ok());
      EXPECT_TRUE(same(v, hot[k][a].back())) << k << " " << a;
    }
  EXPECT_EQ(nf, spec.features.size());
}

}  // namespace
}  // namespace millrace
