// Throughput and state of the window operator (count + sum over one double
// field) for tumbling (60 s), hopping (size 60 s, slide 1 s: size/slide = 60)
// and session (gap 10 s) windows, beside two baselines run in the same
// process over the same events:
//  - a plain absl::flat_hash_map<key, {count, sum}> loop (what a keyed
//    count+sum costs with no windows, lateness or output);
//  - the parse-only loop: simdjson parsing the events' JSON lines into Events.
// Events: 1 M over 100 k keys drawn uniformly at random; event time advances
// 1 ms every 1000 events; the watermark (max time - 1 s) is advanced after
// every event. The event loop is timed apart from the end of input (the
// watermark then walks forward and every window fires; records are written
// and dropped as a sink would).
//
// Throughput is events per CPU-second of the measuring thread
// (CLOCK_THREAD_CPUTIME_ID), best of 3, so that time other processes hold the
// core counts for none of the loops; the machines these run on are shared.
//
//   window_bench [events=1000000] [keys=100000] [tumbling|hopping|session]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <simdjson.h>

#include "millrace/core/event_parser.h"
#include "millrace/core/hash.h"
#include "millrace/stream/spec.h"
#include "millrace/window/window_operator.h"

namespace millrace {
namespace {

// CPU time of the calling thread.
struct Clock {
  using time_point = double;
  static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
};

double Seconds(double since) {
  return Clock::now() - since;
}

constexpr TimeMs kBase = 1767225600000;
constexpr TimeMs kOutOfOrder = 1000;
constexpr size_t kBatch = 64;  // events per on_events call

struct Input {
  Schema schema;
  std::vector<std::string> key_names;
  std::vector<uint32_t> key;
  std::vector<double> amount;
  std::vector<TimeMs> time;
  std::string lines;  // the same events as JSON lines, padded for simdjson
  std::vector<std::pair<size_t, size_t>> line_at;
};

Input MakeInput(size_t events, size_t keys) {
  Input in;
  in.schema.add({"key", FieldType::String, false});
  in.schema.add({"amount", FieldType::Double, false});
  in.schema.add({"ts", FieldType::Int64, false});
  for (size_t k = 0; k < keys; ++k) in.key_names.push_back("k" + std::to_string(k));
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(keys - 1));
  for (size_t i = 0; i < events; ++i) {
    uint32_t k = pick(rng);
    double a = static_cast<double>(rng() % 100000) / 100.0;
    TimeMs t = kBase + static_cast<TimeMs>(i / 1000);
    in.key.push_back(k);
    in.amount.push_back(a);
    in.time.push_back(t);
    size_t start = in.lines.size();
    in.lines += "{\"key\": \"" + in.key_names[k] + "\", \"amount\": " + std::to_string(a) +
                ", \"ts\": " + std::to_string(t) + "}";
    in.line_at.emplace_back(start, in.lines.size() - start);
    in.lines += '\n';
  }
  in.lines.append(simdjson::SIMDJSON_PADDING, ' ');
  return in;
}

void Fill(const Input& in, size_t i, Event* e) {
  e->arena.clear();
  e->set_string(0, in.key_names[in.key[i]]);
  e->values[1].kind = FieldValue::Kind::Double;
  e->values[1].d = in.amount[i];
  e->values[2].kind = FieldValue::Kind::Int;
  e->values[2].i = in.time[i];
  e->time = in.time[i];
}

struct Figure {
  double events_per_s = 0;
  double flush_s = 0;
  size_t state_bytes = 0, keys = 0, open_windows = 0;
  uint64_t results = 0;
};

// The plain hash-map loop: count and sum per key, nothing else.
Figure HashMapLoop(const Input& in) {
  struct CountSum {
    int64_t count = 0;
    double sum = 0;
  };
  Figure best;
  for (int rep = 0; rep < 3; ++rep) {
    absl::flat_hash_map<std::string, CountSum> map;
    Event e;
    e.reset(in.schema.size());
    auto t0 = Clock::now();
    for (size_t i = 0; i < in.key.size(); ++i) {
      Fill(in, i, &e);
      std::string_view key = e.str(0);
      auto it = map.find(absl::string_view(key.data(), key.size()));
      if (it == map.end()) it = map.emplace(std::string(key), CountSum{}).first;
      ++it->second.count;
      it->second.sum += e.values[1].d;
    }
    double s = Seconds(t0);
    Figure f;
    f.events_per_s = static_cast<double>(in.key.size()) / s;
    f.keys = map.size();
    f.state_bytes = map.capacity() * (sizeof(std::pair<std::string, CountSum>) + 1);
    if (f.events_per_s > best.events_per_s) best = f;
  }
  return best;
}

Figure ParseOnlyLoop(const Input& in) {
  Figure best;
  for (int rep = 0; rep < 3; ++rep) {
    EventParser parser(in.schema, 2);
    Event e;
    std::string error;
    size_t ok = 0;
    auto t0 = Clock::now();
    for (const auto& [off, len] : in.line_at) {
      if (parser.parse(in.lines.data() + off, len, in.lines.size() - off, &e, &error)) ++ok;
    }
    double s = Seconds(t0);
    if (ok != in.line_at.size()) {
      std::fprintf(stderr, "window_bench: parse failed: %s\n", error.c_str());
      std::exit(1);
    }
    Figure f;
    f.events_per_s = static_cast<double>(ok) / s;
    if (f.events_per_s > best.events_per_s) best = f;
  }
  return best;
}

// batch == 1: on_event and advance per event; else on_events per batch.
Figure OperatorLoop(const Input& in, const WindowSpec& spec, size_t batch) {
  Figure best;
  for (int rep = 0; rep < 3; ++rep) {
    auto op = WindowOperator::Create(spec, in.schema);
    WindowOutput out;
    std::vector<Event> events(batch);
    for (Event& e : events) e.reset(in.schema.size());
    std::vector<WindowEvent> window_events(batch);
    TimeMs wm = kMinTime, max_time = kMinTime;
    auto t0 = Clock::now();
    for (size_t i = 0; i < in.key.size(); i += batch) {
      const size_t n = std::min(batch, in.key.size() - i);
      for (size_t j = 0; j < n; ++j) {
        Event& e = events[j];
        Fill(in, i + j, &e);
        if (batch == 1) {
          op->on_event(e, std::string_view(), wm, &out);
          max_time = std::max(max_time, e.time);
          wm = std::max(wm, max_time - kOutOfOrder);
          op->advance(wm, &out);
          continue;
        }
        WindowEvent& we = window_events[j];
        we.event = &e;
        we.watermark_before = wm;
        max_time = std::max(max_time, e.time);
        wm = std::max(wm, max_time - kOutOfOrder);
        we.watermark_after = wm;
      }
      if (batch > 1) op->on_events(window_events.data(), n, &out);
      if (out.results.size() > (1u << 20)) out.results.clear();
    }
    double s = Seconds(t0);
    Figure f;
    f.events_per_s = static_cast<double>(in.key.size()) / s;
    f.state_bytes = op->state_bytes();
    f.keys = op->keys();
    f.open_windows = op->open_windows();
    // End of input: the watermark walks forward a second at a time, every
    // window fires, records go to the sink (dropped here).
    auto t1 = Clock::now();
    TimeMs stop = max_time + spec.size + spec.gap + spec.allowed_lateness + 2000;
    for (TimeMs w = wm + 1000; w < stop; w += 1000) {
      op->advance(w, &out);
      out.results.clear();
    }
    op->advance(kMaxTime, &out);
    f.flush_s = Seconds(t1);
    f.results = out.results_emitted;
    if (op->keys() != 0 || op->open_windows() != 0) {
      std::fprintf(stderr, "window_bench: state left after the end of input\n");
      std::exit(1);
    }
    if (f.events_per_s > best.events_per_s) best = f;
  }
  return best;
}

WindowSpec Spec(const Input& in, WindowType type) {
  WindowSpec w;
  w.name = "bench";
  w.key_fields = {in.schema.index_of("key")};
  w.type = type;
  if (type == WindowType::Session) {
    w.gap = 10'000;
  } else {
    w.size = 60'000;
    w.slide = type == WindowType::Hopping ? 1'000 : 60'000;
  }
  WindowAggSpec n, sum;
  n.name = "n";
  n.agg = AggKind::Count;
  sum.name = "total";
  sum.agg = AggKind::Sum;
  sum.field = in.schema.index_of("amount");
  w.aggs = {n, sum};
  return w;
}

}  // namespace
}  // namespace millrace

int main(int argc, char** argv) {
  using namespace millrace;
  size_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  size_t keys = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100'000;
  std::string only = argc > 3 ? argv[3] : "";
  Input in = MakeInput(events, keys);
  std::printf(
      "window_bench: %zu events over %zu keys (uniform), count+sum, watermark advanced "
      "after every event\n\n",
      events, keys);
  Figure map = HashMapLoop(in);
  Figure parse = ParseOnlyLoop(in);
  std::printf("%-34s %11s %9s %9s %12s %12s %12s\n", "", "M ev/cpu-s", "x map", "x parse", "B/key",
              "B/open win", "open wins");
  std::printf("%-34s %11.2f %9s %9.2f %12.1f %12s %12s\n", "baseline: flat_hash_map loop",
              map.events_per_s / 1e6, "1.00", map.events_per_s / parse.events_per_s,
              static_cast<double>(map.state_bytes) / static_cast<double>(map.keys), "-", "-");
  std::printf("%-34s %11.2f %9.2f %9s %12s %12s %12s\n", "baseline: parse-only (simdjson)",
              parse.events_per_s / 1e6, parse.events_per_s / map.events_per_s, "1.00", "-", "-",
              "-");
  const struct {
    const char* arg;
    const char* name;
    WindowType type;
  } kinds[] = {{"tumbling", "tumbling 60s", WindowType::Tumbling},
               {"hopping", "hopping 60s/1s", WindowType::Hopping},
               {"session", "session gap 10s", WindowType::Session}};
  for (const auto& k : kinds) {
    if (!only.empty() && only != k.arg) continue;
    Figure one = OperatorLoop(in, Spec(in, k.type), 1);
    Figure f = OperatorLoop(in, Spec(in, k.type), kBatch);
    if (one.results != f.results) {
      std::fprintf(stderr, "window_bench: %s: %llu results per event, %llu in batches\n", k.arg,
                   static_cast<unsigned long long>(one.results),
                   static_cast<unsigned long long>(f.results));
      return 1;
    }
    std::printf("%-34s %11.2f %9.2f %9.2f %12s %12s %12s\n",
                (std::string(k.name) + ", per event").c_str(), one.events_per_s / 1e6,
                one.events_per_s / map.events_per_s, one.events_per_s / parse.events_per_s, "", "",
                "");
    std::printf("%-34s %11.2f %9.2f %9.2f %12.1f %12.1f %12zu\n",
                (std::string(k.name) + ", batches").c_str(), f.events_per_s / 1e6,
                f.events_per_s / map.events_per_s, f.events_per_s / parse.events_per_s,
                static_cast<double>(f.state_bytes) / static_cast<double>(f.keys),
                static_cast<double>(f.state_bytes) / static_cast<double>(f.open_windows),
                f.open_windows);
    std::printf("%-34s %11s end of input: %llu results in %.3f s (%.2f M results/s)\n", "", "",
                static_cast<unsigned long long>(f.results), f.flush_s,
                static_cast<double>(f.results) / f.flush_s / 1e6);
  }
  std::printf(
      "\nper event: on_event and advance per event; batches: on_events, %zu events per "
      "call (the same results).\n"
      "B/key and B/open win: operator state (keys, window state, timers) after the "
      "event loop, divided by live keys and by open windows.\n"
      "Targets: >= 5 M events/s per core; <= 64 B of state per key for count+sum.\n",
      kBatch);
  return 0;
}
