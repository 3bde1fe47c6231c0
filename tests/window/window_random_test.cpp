// Randomized specs and inputs, checked against a brute force written here:
// every window keeps the list of its events and every result is recomputed
// from that list. Each scenario runs one event per call, in batches
// (on_events), and in batches with the state checkpointed and restored into a
// new operator every few events. Quick to iterate on; the Python reference
// (tests/reference/windows_reference.py) and the data-file cases are the
// independent check.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "millrace/core/time.h"
#include "window_case_runner.h"

namespace millrace::testing {
namespace {

using nlohmann::json;

struct Ev {
  uint64_t seq;
  TimeMs t;
  std::string k;
  int64_t g;
  std::optional<double> v;
  std::optional<std::string> s;
  std::string raw;
};

struct Inst {
  std::vector<std::string> key;  // JSON of each key field
  TimeMs start = 0, end = 0;
  std::vector<const Ev*> events;
  bool fired = false;
  json last;  // last record emitted (final or update)
};

// Aggregates of the random specs, all over v (double?) or s (string?).
const char* kAggs =
    "[{name: n, agg: count}, {name: nv, agg: count, field: v}, {name: sum, agg: sum, field: v},"
    " {name: avg, agg: avg, field: v}, {name: min, agg: min, field: v},"
    " {name: max, agg: max, field: v}, {name: sd, agg: stddev, field: v},"
    " {name: nd, agg: count_distinct, field: s}, {name: fv, agg: first, field: v},"
    " {name: ls, agg: last, field: s}, {name: p50, agg: quantile, q: 0.5, field: v}]";

json values_of(const std::vector<const Ev*>& evs) {
  json r;
  std::vector<double> v;
  std::set<std::string> distinct;
  const Ev *first = nullptr, *last = nullptr;
  for (const Ev* e : evs) {
    if (e->v) {
      v.push_back(*e->v);
      if (!first || std::make_pair(e->t, e->seq) < std::make_pair(first->t, first->seq)) first = e;
    }
    if (e->s) {
      distinct.insert(*e->s);
      if (!last || std::make_pair(e->t, e->seq) > std::make_pair(last->t, last->seq)) last = e;
    }
  }
  r["n"] = evs.size();
  r["nv"] = v.size();
  double sum = 0;
  for (double x : v) sum += x;
  r["sum"] = sum;
  r["nd"] = distinct.size();
  r["ls"] = last ? json(*last->s) : json();
  if (v.empty()) {
    for (const char* k : {"avg", "min", "max", "sd", "fv", "p50"}) r[k] = nullptr;
    return r;
  }
  double mean = sum / static_cast<double>(v.size()), m2 = 0;
  for (double x : v) m2 += (x - mean) * (x - mean);
  r["avg"] = mean;
  r["min"] = *std::min_element(v.begin(), v.end());
  r["max"] = *std::max_element(v.begin(), v.end());
  r["sd"] = std::sqrt(m2 / static_cast<double>(v.size()));
  r["fv"] = *first->v;
  std::sort(v.begin(), v.end());
  r["p50"] = v[static_cast<size_t>(std::floor(0.5 * static_cast<double>(v.size() - 1)))];
  return r;
}

class BruteForce {
 public:
  BruteForce(const WindowSpec& w, const std::vector<std::string>& key_names)
      : w_(w), key_names_(key_names) {}

  void on_event(const Ev& e, TimeMs wm) {
    std::vector<std::string> key;
    for (const auto& name : key_names_)
      key.push_back(name == "k" ? json(e.k).dump() : json(e.g).dump());
    if (w_.type == WindowType::Session) return on_session_event(e, key, wm);
    bool joined = false;
    for (TimeMs s = (e.t - w_.size) / w_.slide * w_.slide - w_.slide; s <= e.t; s += w_.slide) {
      if (!(s <= e.t && e.t < s + w_.size) || s + w_.size + w_.allowed_lateness <= wm) continue;
      joined = true;
      Inst& in = fixed_[{key, s}];
      in.key = key;
      in.start = s;
      in.end = s + w_.size;
      in.events.push_back(&e);
      if (in.fired) correct(in);
    }
    if (!joined) late(e, wm);
  }

  void advance(TimeMs wm) {
    for (auto& [id, in] : fixed_) fire(in, wm);
    for (auto& [key, list] : sessions_)
      for (Inst& in : list) fire(in, wm);
    std::erase_if(fixed_, [&](auto& p) { return p.second.end + w_.allowed_lateness <= wm; });
    for (auto& [key, list] : sessions_)
      std::erase_if(list, [&](Inst& in) { return in.end + w_.allowed_lateness <= wm; });
  }

  std::vector<std::string> results, late_records;

 private:
  void on_session_event(const Ev& e, const std::vector<std::string>& key, TimeMs wm) {
    auto& list = sessions_[key];
    std::vector<Inst> touched, rest;
    for (Inst& in : list)
      (in.start < e.t + w_.gap && e.t < in.end ? touched : rest).push_back(std::move(in));
    list = std::move(rest);
    if (touched.empty() && e.t + w_.gap + w_.allowed_lateness <= wm) return late(e, wm);
    Inst merged;
    merged.key = key;
    bool fired = false;
    for (Inst& in : touched) {
      merged.events.insert(merged.events.end(), in.events.begin(), in.events.end());
      if (in.fired) {
        fired = true;
        if (w_.retract) emit_retract(in);
      }
    }
    merged.events.push_back(&e);
    merged.start = merged.end = e.t;
    for (const Ev* x : merged.events) {
      merged.start = std::min(merged.start, x->t);
      merged.end = std::max(merged.end, x->t);
    }
    merged.end += w_.gap;
    if (fired) {
      merged.fired = true;
      emit(merged, "update");
    }
    list.push_back(std::move(merged));
  }

  void fire(Inst& in, TimeMs wm) {
    if (in.fired || in.end > wm) return;
    in.fired = true;
    emit(in, "final");
  }
  void correct(Inst& in) {
    if (w_.retract) emit_retract(in);
    emit(in, "update");
  }
  void emit_retract(const Inst& in) {
    json r = in.last;
    r["kind"] = "retract";
    results.push_back(r.dump());
  }
  void emit(Inst& in, const char* kind) {
    json r = values_of(in.events);
    r["window"] = w_.name;
    for (size_t i = 0; i < key_names_.size(); ++i) r[key_names_[i]] = json::parse(in.key[i]);
    r["window_start"] = in.start;
    r["window_end"] = in.end;
    r["kind"] = kind;
    in.last = r;
    results.push_back(r.dump());
  }
  void late(const Ev& e, TimeMs wm) {
    if (w_.late == LatePolicy::Drop) return;
    json r = {{"window", w_.name},
              {"reason", "window closed: end + allowed_lateness <= watermark"},
              {"watermark", wm},
              {"event", json::parse(e.raw)}};
    late_records.push_back(r.dump());
  }

  WindowSpec w_;
  std::vector<std::string> key_names_;
  std::map<std::pair<std::vector<std::string>, TimeMs>, Inst> fixed_;
  std::map<std::vector<std::string>, std::vector<Inst>> sessions_;
};

struct Scenario {
  std::string yaml;
  std::vector<Ev> events;
  std::vector<std::string> lines;
};

// `scale` multiplies every time and duration (long sessions: ends beyond
// what a session node holds inline); `type`: "" picks one at random.
Scenario make_scenario(uint64_t seed, int64_t scale = 1, std::string type = "") {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::initializer_list<int64_t> xs) {
    return *(xs.begin() + static_cast<int64_t>(rng() % xs.size())) * scale;
  };
  Scenario sc;
  int64_t ooo = pick({0, 5, 20}), src_late = pick({0, 30, 100, 1000});
  const std::string random_type =
      std::vector<std::string>{"tumbling", "hopping", "session"}[rng() % 3];
  if (type.empty()) type = random_type;
  std::string shape;
  if (type == "tumbling") shape = fmt::format("size: {}", pick({10, 25, 60}));
  if (type == "hopping") {
    int64_t slide = pick({5, 10, 15});
    shape = fmt::format("size: {}, slide: {}", slide * pick({1, 2, 3}) + pick({0, 0, 5}), slide);
  }
  if (type == "session") shape = fmt::format("gap: {}", pick({5, 15, 30}));
  std::string key = rng() % 2 ? "[k]" : "[k, g]";
  sc.yaml = fmt::format(
      "source:\n  time: ts\n  max_out_of_orderness: {}\n  allowed_lateness: {}\n"
      "  schema:\n    k: string\n    g: int64\n    v: double?\n    s: string?\n    ts: int64\n"
      "windows:\n  - {{name: w, key: {}, type: {}, {}, aggs: {}, allowed_lateness: {},"
      " late: {}, retract: {}}}\n",
      ooo, src_late, key, type, shape, kAggs, pick({0, 10, 40}), rng() % 2 ? "drop" : "side_output",
      rng() % 2 ? "true" : "false");
  size_t n = 100 + rng() % 300;
  TimeMs t = (1000 + static_cast<TimeMs>(rng() % 100)) * scale;
  std::vector<std::pair<TimeMs, size_t>> order;
  for (size_t i = 0; i < n; ++i) {
    t += pick({0, 1, 2, 4, 9});
    Ev e;
    e.t = t;
    e.k = fmt::format("k{}", rng() % 4);
    e.g = static_cast<int64_t>(rng() % 2);
    if (rng() % 5) e.v = static_cast<double>(rng() % 2000) / 8.0 + 0.125;
    if (rng() % 4) e.s = std::string(1, static_cast<char>('a' + rng() % 5));
    json j = {{"k", e.k}, {"g", e.g}, {"ts", e.t}};
    if (e.v) j["v"] = *e.v;
    if (e.s) j["s"] = *e.s;
    e.raw = j.dump();
    int64_t delay = rng() % 3 == 0 ? static_cast<int64_t>(rng() % 120) * scale : 0;
    order.emplace_back(t + delay, i);
    sc.events.push_back(std::move(e));
  }
  std::stable_sort(order.begin(), order.end());
  std::vector<Ev> arrived;
  for (auto& [at, i] : order) arrived.push_back(sc.events[i]);
  sc.events = std::move(arrived);
  for (auto& e : sc.events) sc.lines.push_back(e.raw);
  return sc;
}

void check_against_brute_force(uint64_t seed, int64_t scale, const std::string& type) {
  {
    Scenario sc = make_scenario(seed, scale, type);
    auto spec = parse_spec(sc.yaml, "random.yaml");
    ASSERT_TRUE(spec.ok()) << spec.status().message() << "\n" << sc.yaml;
    const WindowSpec& w = spec->windows[0];
    std::vector<std::string> key_names;
    for (int f : w.key_fields) key_names.push_back(spec->source.schema[f].name);

    BruteForce bf(w, key_names);
    TimeMs wm = kMinTime, max_time = kMinTime;
    uint64_t seq = 0;
    for (Ev& e : sc.events) {
      if (e.t < wm - spec->source.allowed_lateness) continue;
      e.seq = seq++;
      bf.on_event(e, wm);
      max_time = std::max(max_time, e.t);
      wm = std::max(wm, max_time - spec->source.max_out_of_orderness);
      bf.advance(wm);
    }
    bf.advance(kMaxTime);

    // One event per call; batches (on_events); batches with the state saved
    // and restored into a new operator every few events; batches where the
    // watermark moves in entries of their own, with no event.
    const size_t batch = 1 + seed % 37;
    const WindowRunOptions runs[] = {{},
                                     {.batch = batch},
                                     {.batch = batch, .restore_every = 1 + seed % 50},
                                     {.batch = 1 + batch, .watermark_entries = true}};
    for (const WindowRunOptions& o : runs) {
      auto run = run_window_lines(spec.value(), sc.lines, o);
      ASSERT_TRUE(run.ok()) << run.status().message();
      ASSERT_TRUE(same_window_results(spec.value(), bf.results, run->results))
          << "seed " << seed << ", batch " << o.batch << ", restore every " << o.restore_every
          << "\n"
          << sc.yaml;
      ASSERT_TRUE(same_late_records(bf.late_records, run->late))
          << "seed " << seed << ", batch " << o.batch << "\n"
          << sc.yaml;
    }
  }
}

TEST(WindowRandomized, MatchesBruteForce) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    check_against_brute_force(seed, 1, "");
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// Sessions longer than 2^30 ms (12.4 days): their ends are kept beside the nodes.
TEST(WindowRandomized, LongSessionsMatchBruteForce) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    check_against_brute_force(seed, 100'000'000, "session");
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace millrace::testing
